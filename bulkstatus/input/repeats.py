"""Customers that one file names more than once, found by a pre-pass over the whole file: which rows may
repeat an earlier row's customer, and which customers the file gives different labels (Suspended in row
2, Active in row 9).

The list then contradicts itself, and which label is meant only its author knows, so none of those rows
is sent. That must be known before row 2 goes out, hence a pass over the whole file before anything is
sent: ``find_repeats`` reads the rows with ``InputReader.rest_columns`` (the csv module alone, the reader's
cells and row numbers) and keeps, per row, a 64-bit hash of its ``customer_key`` (the duplicate check's
notion of the same customer), one of its label and its number: 20 bytes a row, 20 MB for a million rows,
plus a sixteenth of that for sorting, all freed before the run's own duplicate index is built. After it
are kept only the row numbers of customers with two labels or more, grouped by customer (the run looks a
row up by its number), and a bitmap of the rows whose customer appears more than once (a bit a row: 125
KB for a million rows). Only those rows can be duplicates, so the run's DuplicateIndex holds them alone:
a few rows in a usual file, not 16 MB for a million.
Two customers share a hash with probability about n^2 / 2^65, as in DuplicateIndex; a shared hash only
makes a row a candidate, which the DuplicateIndex then decides exactly as before.

Which rows take part: every row that has an identifierValue and a label (after ``--label``), whatever
else is wrong with it, since the contradiction is in the list either way; a row without a label says
nothing about which one is meant (and is invalid, so never a duplicate). Labels are compared as written
(the API's labels are exact).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bulkstatus.input.duplicates import U32, U64, mobile_digits
from bulkstatus.input.reader import RestColumns
from bulkstatus.model import IDENTIFIER_NAMES

__all__ = ["Repeats", "conflict_message", "find_repeats"]

_LISTED = 5  # row numbers a message names; the rest are counted
_PARTS, _SHIFT = 16, np.uint64(60)  # the sort is done a sixteenth at a time (see _conflicts)
_BLOCK = 1 << 17  # rows per block of _Columns: 0.5-1 MB arrays


def conflict_message(rows: list[int]) -> str:
    """The error of each row of a customer given different labels, naming the customer's rows."""
    shown = [str(r) for r in rows[:_LISTED]]
    if len(rows) > _LISTED:
        listed = f"{', '.join(shown)} and {len(rows) - _LISTED} more"
    else:
        listed = f"{', '.join(shown[:-1])} and {shown[-1]}"
    return (f"rows {listed} give this customer different labels: keep one (delete the others, or give them "
            "the same label); nothing is sent for this customer")


class Repeats:
    """The rows whose customer the file names more than once; of those, the rows of customers that the
    file gives two labels or more, grouped by customer."""

    __slots__ = ("_group", "_members", "_repeated", "_rows", "_starts", "repeated")

    def __init__(self, rows: np.ndarray | None = None, starts: np.ndarray | None = None,
                 repeated: np.ndarray | None = None) -> None:
        # Bit n of _repeated: row n's customer appears in another row too (a candidate duplicate).
        repeated = repeated if repeated is not None else np.zeros(0, np.uint32)
        self.repeated = len(repeated)  # how many such rows
        bits = np.zeros((int(repeated.max()) >> 3) + 1 if len(repeated) else 0, np.uint8)
        np.bitwise_or.at(bits, repeated >> 3, (np.uint8(1) << (repeated & 7).astype(np.uint8)))
        self._repeated = bits.tobytes()
        # Group i (one customer) is rows[starts[i]:starts[i + 1]], in row order.
        self._rows = rows if rows is not None else np.zeros(0, np.uint32)
        self._starts = starts if starts is not None else np.zeros(1, np.int64)
        order = np.argsort(self._rows, kind="stable")
        self._members = self._rows[order]  # every such row, sorted, for the look-up by row number
        self._group = (np.searchsorted(self._starts, order, side="right") - 1).astype(np.uint32)

    def may_repeat(self, number: int) -> bool:
        """Whether row ``number``'s customer appears in another row too; if not, it is no duplicate."""
        at = number >> 3
        return at < len(self._repeated) and bool(self._repeated[at] >> (number & 7) & 1)

    def __len__(self) -> int:
        """How many customers are given different labels."""
        return len(self._starts) - 1

    @property
    def rows(self) -> int:
        """How many rows those customers have."""
        return len(self._rows)

    def rows_with(self, number: int) -> list[int] | None:
        """All rows of the customer of row ``number`` (in order), if the file gives it different labels."""
        members = self._members
        if not len(members) or number < members[0] or number > members[-1]:
            return None
        at = int(np.searchsorted(members, number))
        if at == len(members) or int(members[at]) != number:
            return None
        group = int(self._group[at])
        rows: list[int] = self._rows[self._starts[group]: self._starts[group + 1]].tolist()
        return rows

    def message(self, number: int) -> str | None:
        """The problem of row ``number``: None unless it is a row of such a customer."""
        rows = self.rows_with(number) if len(self._members) else None
        return conflict_message(rows) if rows is not None else None


def find_repeats(batches: Iterable[RestColumns]) -> Repeats:
    """Read every row (``InputReader.rest_columns()``: consecutive rows, a column at a time) and find the
    rows whose customer appears more than once and the customers given different labels. Columns are
    taken whole (C-speed ``map`` of Python's string hash): a Python call per row would cost more than
    reading the rows. The hashes are kept a batch at a time,
    so nothing is copied to grow (a workbook's row count is not known before it is read)."""
    store = _Columns()
    names: dict[str, str] = {}
    for first, raw_names, values, label_cells in batches:
        if not values:
            continue
        rows = np.arange(first, first + len(values), dtype=np.uint32)
        if not (all(values) and all(label_cells)):  # some rows take no part
            taking = [i for i, (v, lab) in enumerate(zip(values, label_cells, strict=True)) if v and lab]
            if not taking:
                continue
            rows = rows[taking]
            raw_names = [raw_names[i] for i in taking]
            values = [values[i] for i in taking]
            label_cells = [label_cells[i] for i in taking]
        for name in set(raw_names) - names.keys():
            names[name] = IDENTIFIER_NAMES.get(name.lower(), name)
        if len(names) > 4096:  # a handful in any real file; a broken one may have a name per row
            names.clear()
            names.update((name, IDENTIFIER_NAMES.get(name.lower(), name)) for name in set(raw_names))
        kinds = np.array(list(map(names.__getitem__, raw_names)), dtype=object)
        store.add(rows, _hashes(kinds, np.array(values, dtype=object)), _hash_all(label_cells))
    return _conflicts(store.chunks())


class _Columns:
    """Row numbers, customer hashes and label hashes, appended in blocks of _BLOCK rows: each block is
    over glibc's mmap threshold (128 KiB), so that freeing them gives the memory back to the system; a
    10,000-row batch's arrays would come from the heap and stay in the process's RSS for the whole run."""

    __slots__ = ("_blocks", "_used")

    def __init__(self) -> None:
        self._blocks: list[tuple[U32, U64, U64]] = []
        self._used = _BLOCK

    def add(self, rows: U32, keys: U64, labels: U64) -> None:
        while len(rows):
            if self._used == _BLOCK:
                self._blocks.append((np.empty(_BLOCK, np.uint32), np.empty(_BLOCK, np.uint64),
                                     np.empty(_BLOCK, np.uint64)))
                self._used = 0
            take = min(len(rows), _BLOCK - self._used)
            at = slice(self._used, self._used + take)
            block_rows, block_keys, block_labels = self._blocks[-1]
            block_rows[at], block_keys[at], block_labels[at] = rows[:take], keys[:take], labels[:take]
            rows, keys, labels = rows[take:], keys[take:], labels[take:]
            self._used += take

    def chunks(self) -> list[tuple[U32, U64, U64]]:
        if not self._blocks:
            return []
        rows, keys, labels = self._blocks[-1]
        return [*self._blocks[:-1], (rows[: self._used], keys[: self._used], labels[: self._used])]


def _hashes(kinds: np.ndarray, values: np.ndarray) -> U64:
    """A 64-bit hash of each customer (kinds: documented names; values as written), never 0.

    Values are compared as ``duplicates.customer_key`` says (emails in any letter case, mobiles by their digits).
    The hash is Python's own string hash (SipHash-1-3, 64 bits, keyed per process: the pre-pass's hashes are
    used only in the process that made them), taken by ``map`` in C: 0.05 s for a million values, where
    pandas' hash_array takes 0.2 s and a BLAKE2b call per key as DuplicateIndex makes 1.2 s. The kind's
    hash is multiplied by an odd constant before it is mixed in, so that the two halves of a key do not
    cancel."""
    for kind, same in (("email", str.lower), ("mobile", mobile_digits)):  # as customer_key does
        at = np.flatnonzero(kinds == kind)
        if len(at) and not _as_compared(kind, "\x1f" + "\x1f".join(values[at])):
            values[at] = list(map(same, values[at]))
    hashes = _hash_all(values)
    hashes ^= _hash_all(kinds) * np.uint64(0x9E3779B97F4A7C15)
    hashes[hashes == 0] = 1
    return hashes


def _hash_all(texts: Iterable[str] | np.ndarray) -> U64:
    """Python's hash of each string, as unsigned 64-bit integers."""
    return np.fromiter(map(hash, texts), np.int64).view(np.uint64)


def _as_compared(kind: str, joined: str) -> bool:
    """Whether every value of ``joined`` (each after a \\x1f) is already as customer_key compares it:
    emails in lower case, mobiles digits alone and not after 00. A few C-speed scans of the whole batch
    spare a call per value in the usual file."""
    if kind == "email":
        return joined == joined.lower()
    return joined.replace("\x1f", "").isdigit() and "\x1f00" not in joined


def _conflicts(chunks: list[tuple[U32, U64, U64]]) -> Repeats:
    """The rows whose customer appears more than once, and the customers with two labels or more and
    their rows. Sorted by customer, a customer has two labels or more exactly when two neighbours of the
    same customer differ in label. The hashes are sorted a sixteenth at a time (by their top four bits,
    uniform for a hash): the temporary arrays of a sort are then a sixteenth of the file's, not three
    times 8 MB for a million rows."""
    groups: list[U32] = []  # the rows of each customer given different labels, in row order
    repeated: list[U32] = []  # the rows of each part whose customer appears more than once
    for part in range(_PARTS):
        picked = [(r[m], k[m], lab[m]) for r, k, lab in chunks if (m := (k >> _SHIFT) == part).any()]
        if not picked:
            continue
        rows, keys, labels = (np.concatenate(column) for column in zip(*picked, strict=True))
        del picked
        order = np.argsort(keys, kind="stable")  # stable: rows stay in order within a customer
        keys, labels, rows = keys[order], labels[order], rows[order]
        same = keys[1:] == keys[:-1]
        if not same.any():
            continue
        twice = np.zeros(len(keys), bool)
        twice[1:] |= same
        twice[:-1] |= same
        repeated.append(rows[twice])
        clash = same & (labels[1:] != labels[:-1])
        if not clash.any():
            continue
        members = np.isin(keys, keys[1:][clash])
        keys, rows = keys[members], rows[members]
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        groups += np.split(rows, cuts)
    all_repeated = np.concatenate(repeated) if repeated else None
    if not groups:
        return Repeats(repeated=all_repeated)
    starts = np.cumsum([0] + [len(g) for g in groups], dtype=np.int64)
    return Repeats(np.concatenate(groups), starts, all_repeated)
