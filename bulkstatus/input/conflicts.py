"""Customers that one file gives different labels (Suspended in row 2, Active in row 9): a pre-pass.

The list contradicts itself, and which label is meant only its author knows, so none of those rows is
sent. That must be known before row 2 goes out, hence a pass over the whole file before anything is
sent: ``find_conflicts`` reads the rows again with ``InputReader.rest`` (the csv module alone, the
reader's cells and numbers) and keeps, per row, the 64-bit ``key_hash`` of its ``customer_key`` and a
hash of its label: 16 bytes a row, 16 MB for a million rows, plus the sort's 8 MB, all freed before the
run's own duplicate index is built. Only the rows of customers with two labels or more are kept after
it: the sorted hashes of those customers and their row numbers.

Which rows take part: every row that has an identifierValue and a label (after ``--label``), whatever
else is wrong with it, since the contradiction is in the list either way; a row without a label says
nothing about which one is meant. Labels are compared as written (the API's labels are exact).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bulkstatus.input.duplicates import U64, customer_key, key_hashes
from bulkstatus.input.reader import RestRow
from bulkstatus.model import IDENTIFIER_NAMES

__all__ = ["LabelConflicts", "conflict_message", "find_conflicts"]

_LISTED = 5  # row numbers a message names; the rest are counted


def conflict_message(rows: list[int]) -> str:
    """The error of each row of a customer given different labels, naming the customer's rows."""
    shown = [str(r) for r in rows[:_LISTED]]
    if len(rows) > _LISTED:
        listed = f"{', '.join(shown)} and {len(rows) - _LISTED} more"
    else:
        listed = f"{', '.join(shown[:-1])} and {shown[-1]}"
    return (f"rows {listed} give this customer different labels: keep one (delete the others, or give them "
            "the same label); nothing is sent for this customer")


class LabelConflicts:
    """The customers (by key hash) that the file gives two labels or more, and their rows."""

    __slots__ = ("_keys", "_rows", "_set", "_starts")

    def __init__(self, keys: U64 | None = None, starts: np.ndarray | None = None,
                 rows: np.ndarray | None = None) -> None:
        self._keys = keys if keys is not None else np.zeros(0, np.uint64)  # sorted, unique
        self._starts = starts if starts is not None else np.zeros(1, np.int64)  # group i: rows[starts[i]:starts[i+1]]
        self._rows = rows if rows is not None else np.zeros(0, np.uint32)
        self._set = set(self._keys.tolist())  # a membership test per row at Python speed

    def __len__(self) -> int:
        """How many customers are given different labels."""
        return len(self._keys)

    @property
    def rows(self) -> int:
        """How many rows those customers have."""
        return len(self._rows)

    def rows_of(self, h: int) -> list[int] | None:
        """The rows (in order) of the customer whose key hash is ``h``, if the file gives it different labels."""
        if h not in self._set:
            return None
        at = int(np.searchsorted(self._keys, np.uint64(h)))
        rows: list[int] = self._rows[self._starts[at]: self._starts[at + 1]].tolist()
        return rows

    def message(self, h: int, number: int) -> str | None:
        """The problem of row ``number``, whose key hash is ``h``: None unless it is one of such rows."""
        rows = self.rows_of(h)
        return conflict_message(rows) if rows is not None and number in rows else None


def find_conflicts(batches: Iterable[list[RestRow]], expected_rows: int = 0) -> LabelConflicts:
    """Read every row (``InputReader.rest(0)``'s batches: rows numbered 1, 2, ... with no gap) and find
    the customers given different labels."""
    size = max(expected_rows, 1024)
    hashes = np.zeros(size, np.uint64)  # 0: the row takes no part (no value or no label)
    labels = np.zeros(size, np.int64)
    names: dict[str, str] = {}
    count = 0
    for batch in batches:
        keys: list[tuple[str, str]] = []
        label_hashes: list[int] = []
        at: list[int] = []
        for number, name, value, label, _reason, _origin in batch:
            if not (value and label):
                continue
            canonical = names.get(name)
            if canonical is None:
                canonical = IDENTIFIER_NAMES.get(name.lower(), name)
                if len(names) < 4096:  # a handful in any real file
                    names[name] = canonical
            keys.append(customer_key(canonical, value))
            # Python's own string hash: labels are only compared within this pass, never stored.
            label_hashes.append(hash(label))
            at.append(number - 1)
        if batch:
            count = batch[-1][0]
        if count > len(hashes):
            grown = max(count, 2 * len(hashes))
            hashes = np.concatenate([hashes, np.zeros(grown - len(hashes), np.uint64)])
            labels = np.concatenate([labels, np.zeros(grown - len(labels), np.int64)])
        if keys:
            index = np.asarray(at, np.int64)
            hashes[index] = key_hashes(keys)
            labels[index] = np.asarray(label_hashes, np.int64)
    return _conflicts(hashes[:count], labels[:count])


def _conflicts(hashes: U64, labels: np.ndarray) -> LabelConflicts:
    """Sorted by customer, a customer has two labels or more exactly when two neighbours of the same
    customer differ in label."""
    order = np.argsort(hashes, kind="stable")
    by_key = hashes[order]
    by_label = labels[order]
    clash = (by_key[1:] == by_key[:-1]) & (by_label[1:] != by_label[:-1]) & (by_key[1:] != 0)
    del by_label
    if not clash.any():
        return LabelConflicts()
    keys = np.unique(by_key[1:][clash])
    del by_key, clash
    members = np.isin(hashes, keys)
    rows = (np.flatnonzero(members) + 1).astype(np.uint32)  # in row order
    member_keys = hashes[members]
    grouped = np.argsort(member_keys, kind="stable")  # by customer, rows still in order within each
    starts = np.searchsorted(member_keys[grouped], keys)
    return LabelConflicts(keys, np.append(starts, len(rows)).astype(np.int64), rows[grouped])
