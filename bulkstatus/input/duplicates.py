"""Which rows repeat an earlier row's customer: a compact index of (identifierName, identifierValue), the
value compared as the API would see it (``customer_key``: emails in any letter case, mobiles by digits).

A Python set of a million key tuples takes ~150 MB. The index keeps only a 64-bit BLAKE2b hash of
each key and the row number that first had it, in an open-addressing table (linear probing) of two
numpy arrays kept at most three quarters full: 12 bytes a slot, 16 bytes a key when the table is sized
for the file up front (`expected_keys`), 16-32 when it grows (doubling). The table's size is not a
power of two, so a key's home slot is its hash modulo the size: a power of two would round a million
keys up to 2^21 slots, 25 MB instead of 16.
Two different keys share a hash with probability about n^2 / 2^65: 3e-8 for a million rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["DuplicateIndex", "customer_key", "duplicate_message", "key_hash", "key_hashes", "mobile_digits"]

_EMPTY = 0  # marks a free slot; a key whose hash is 0 is stored as 1
_MIN_SLOTS = 1 << 12
_REHASH_SLICE = 1 << 16

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


# What a mobile number's digits are compared without: punctuation, then a leading + or 00 (the
# international prefix written two ways).
_MOBILE_NOISE = re.compile(r"[\s\-.()/]")


def customer_key(name: str, value: str) -> tuple[str, str]:
    """Who a row is, as the API would see it: (documented identifier name, value compared per kind).

    An email in any letter case is one address; a mobile number is its digits (spaces, dashes, dots,
    brackets, a leading ``+`` or ``00`` ignored); any other kind as written. Only the comparison uses
    this: what is sent is the value as written."""
    if name == "email":
        return name, value.lower()
    if name == "mobile":
        return name, mobile_digits(value)
    return name, value


def mobile_digits(value: str) -> str:
    """A mobile number as customer_key compares it."""
    digits = value if value.isdigit() else _MOBILE_NOISE.sub("", value).removeprefix("+")
    return digits[2:] if digits.startswith("00") else digits


def key_hash(key: tuple[str, str]) -> int:
    """A stable (same in every process) non-zero 64-bit hash of (identifier name, value).

    NUL cannot occur in a documented identifier name, so name + NUL + value is unambiguous."""
    data = f"{key[0]}\x00{key[1]}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") or 1


def key_hashes(keys: Sequence[tuple[str, str]]) -> U64:
    """``key_hash`` of every key, as one array (one digest per key, no call per key)."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(f"{name}\x00{value}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
                        for name, value in keys])
    hashes = np.frombuffer(digests, dtype="<u8").astype(np.uint64)
    hashes[hashes == _EMPTY] = 1
    return hashes


_SAME = {
    "email": "the same email address (compared in any letter case) appears there",
    "mobile": "the same mobile number (compared by its digits: a leading + or 00, spaces and dashes ignored) "
              "appears there",
}


def duplicate_message(earlier_row: int, name: str = "") -> str:
    """The error of a duplicate row, naming the row that is sent instead (and how an email or a mobile
    number was compared, since the two may be written differently)."""
    same = _SAME.get(name, "the same identifierName and identifierValue appear there")
    return f"duplicate of row {earlier_row}: {same}, and only that row is sent; delete this row"


class DuplicateIndex:
    """Remembers the first row of every key; `check` says whether a key was seen before."""

    __slots__ = ("_count", "_keys", "_rows", "_size")

    def __init__(self, expected_keys: int = 0) -> None:
        self._count = 0
        self._allocate(_slots_for(expected_keys))

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Memory held by the table's arrays."""
        return int(self._keys.nbytes + self._rows.nbytes)

    def check(self, key: tuple[str, str], row_number: int) -> int | None:
        """The earlier row number with the same key, else None after recording this row."""
        return self.check_hash(key_hash(key), row_number)

    def check_hash(self, h: int, row_number: int) -> int | None:
        """``check`` of a key whose ``key_hash`` is ``h``."""
        keys, size = self._keys, self._size
        slot = h % size
        while True:
            found = keys.item(slot)
            if found == h:
                return int(self._rows.item(slot))
            if found == _EMPTY:
                break
            slot += 1
            if slot == size:
                slot = 0
        if 4 * (self._count + 1) > 3 * size:
            self._grow(self._count + 1)
            self._insert(np.array([h], np.uint64), np.array([row_number], np.uint32))
        else:
            keys[slot] = h
            self._rows[slot] = row_number
        self._count += 1
        return None

    def check_many(self, keys: Sequence[tuple[str, str]], rows: Sequence[int]) -> list[int | None]:
        """`check` for many rows at once, in order: a row may repeat one earlier in the same batch."""
        n = len(keys)
        if n == 0:
            return []
        hashes = key_hashes(keys)
        numbers = np.asarray(rows, dtype=np.uint32)
        unique, first = np.unique(hashes, return_index=True)
        inverse = np.searchsorted(unique, hashes)
        seen = self._lookup(unique)  # earlier row in the table, 0 when new
        first_of_each = first[inverse]
        in_batch = np.where(first_of_each != np.arange(n), numbers[first_of_each], 0)
        earlier = np.where(seen[inverse] != 0, seen[inverse], in_batch)
        new = seen == 0
        self._grow(self._count + int(new.sum()))
        self._insert(unique[new], numbers[first[new]])
        self._count += int(new.sum())
        return [int(r) or None for r in earlier.tolist()]

    # --- the table ------------------------------------------------------------------------------

    def _allocate(self, slots: int) -> None:
        self._keys: U64 = np.zeros(slots, np.uint64)
        self._rows: U32 = np.zeros(slots, np.uint32)
        self._size = slots

    def _grow(self, count: int) -> None:
        """Make room for `count` keys, keeping the table at most three quarters full."""
        if 4 * count <= 3 * self._size:
            return
        old_keys, old_rows = self._keys, self._rows
        self._allocate(max(_slots_for(count), 2 * self._size))
        # Rehash in slices so that the temporary arrays stay small next to the table itself.
        for start in range(0, len(old_keys), _REHASH_SLICE):
            keys = old_keys[start : start + _REHASH_SLICE]
            used = keys != _EMPTY
            self._insert(keys[used], old_rows[start : start + _REHASH_SLICE][used])

    def _home(self, hashes: U64) -> I64:
        return (hashes % np.uint64(self._size)).astype(np.int64)

    def _lookup(self, hashes: U64) -> U32:
        """Row stored for each hash, 0 when absent; all hashes probe in step, one slot per round."""
        slots = self._home(hashes)
        result = np.zeros(len(hashes), np.uint32)
        pending = np.arange(len(hashes))
        while pending.size:
            stored = self._keys[slots[pending]]
            hit = stored == hashes[pending]
            result[pending[hit]] = self._rows[slots[pending[hit]]]
            pending = pending[~hit & (stored != _EMPTY)]
            slots[pending] = (slots[pending] + 1) % self._size
        return result

    def _insert(self, hashes: U64, rows: U32) -> None:
        """Store hashes absent from the table (and unique). Each round, every pending hash whose
        slot is free competes for it; one per slot wins, the rest move on to the next slot."""
        slots = self._home(hashes)
        pending = np.arange(len(hashes))
        while pending.size:
            free = pending[self._keys[slots[pending]] == _EMPTY]
            _, winner_at = np.unique(slots[free], return_index=True)
            won = free[winner_at]
            self._keys[slots[won]] = hashes[won]
            self._rows[slots[won]] = rows[won]
            placed = np.zeros(len(hashes), bool)
            placed[won] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) % self._size


def _slots_for(count: int) -> int:
    """Fewest slots (at least _MIN_SLOTS) that keep `count` keys at most three quarters of them."""
    return max(_MIN_SLOTS, -(-4 * count // 3))
