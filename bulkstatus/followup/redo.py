"""``rejected.csv``: the rows of a run whose request was rejected, or failed after approval, to fix and run again.

``track`` writes it while it rewrites results.csv, from the same rows: the input's four columns first, as
results.csv holds them (a value guarded as ``="..."`` there stays guarded, and the reader unwraps it), so
``bulkstatus run rejected.csv`` reads it like any input; then the row of this run, its requestId, the state
and why (``stateReason``), which the reader ignores. It is rewritten whole by every track, through a
temporary file, so it always matches results.csv.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from bulkstatus.input.rules import normalise
from bulkstatus.run.journal import csv_writer

REDO = "rejected.csv"
REDO_STATES = frozenset({"rejected", "failed"})
INPUT_COLUMNS = ("identifierName", "identifierValue", "label", "reason")
REDO_COLUMNS = (*INPUT_COLUMNS, "sourceRow", "row", "requestId", "state", "stateReason")
NO_REASON = "(no reason given)"
_MAX_REASONS = 1000  # distinct reasons counted; a free-text message per request must not grow without end


class RedoFile:
    """Collects the redo rows of one rewrite of results.csv; ``commit`` puts the file in place."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.rows = 0
        self.reasons: Counter[str] = Counter()  # (state, reason) as "state: reason", for the summary
        # (a results.csv written before sourceRow existed: its row is the source row)
        self._at = [header.index(name if name in header else "row") for name in REDO_COLUMNS]
        self._id_at, self._state_at, self._reason_at = self._at[-3:]
        self._tmp = path.with_name(path.name + ".tmp")
        self._fh = self._tmp.open("w", newline="", encoding="utf-8")
        self._writer = csv_writer(self._fh)
        self._writer.writerow(REDO_COLUMNS)

    def offer(self, row: list[str]) -> None:
        """Write ``row`` (cells of results.csv) when its request ended rejected or failed."""
        if row[self._state_at] not in REDO_STATES or not row[self._id_at]:
            return
        self.rows += 1
        self._writer.writerow([row[i] for i in self._at])
        key = f"{row[self._state_at]}: {normalise(row[self._reason_at]) or NO_REASON}"
        if key in self.reasons or len(self.reasons) < _MAX_REASONS:
            self.reasons[key] += 1

    def commit(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)
