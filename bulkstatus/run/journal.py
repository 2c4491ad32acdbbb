"""The run folder's files, written as rows finish, so that a crash loses no recorded outcome.

``journal.jsonl`` is the source of truth. Before a row's request goes out, a line ``{"s": row}`` says it
is in flight, and it reaches the operating system before the request is sent (one ``os.write``). When the
answer comes, a line ``{"f": [...]}`` holds the outcome. Outcomes are buffered and written in small
batches (with the next in-flight line, or every ``flush_every`` seconds); ``fsync`` runs on a timer, not
per row. ``kill -9`` therefore loses at most the answers of rows that were in flight, and those rows are
*in doubt* on resume, never forgotten.

``results.csv``, ``retry.csv`` and ``fix.csv`` (which rows go to which: ``redo.py``) are written in input
order from a reorder buffer: a row waits there until every earlier row has finished, which holds at most
the rows in flight plus those finished after them (bounded by concurrency and retry waits, not by the
file). After each batch a checkpoint line ``{"k": last_row, "rb": bytes, "yb": bytes, "xb": bytes,
"n": counts, "x": redo counts}`` records how far the three files (results, retry, fix) are complete, so
that resume can cut each back to a known-good length and carry on. Every row carries ``sourceRow``, its
number in the file it first came from, so that a re-run of retry.csv or fix.csv says which row it was.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkstatus.errors import OutputError
from bulkstatus.jsonio import dumps, loads
from bulkstatus.logs import scrub
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.cells import FORMULA_STARTS
from bulkstatus.run.cells import spreadsheet_safe as safe  # no formula cells (see cells.py)
from bulkstatus.run.redo import Redo, fix_for, redo
from bulkstatus.timestamps import stamp_ms

RESULT_COLUMNS = (
    "row", "sourceRow", "identifierName", "identifierValue", "label", "reason", "outcome", "requestId", "state",
    "httpStatus", "errorCode", "error", "attempts", "finishedAt",
)
# The four input columns first, so that each file is an input file as it stands (the others are ignored by
# the reader, sourceRow aside); fix.csv has what to change right after them.
RETRY_COLUMNS = ("identifierName", "identifierValue", "label", "reason", "sourceRow", "row", "outcome", "error")
FIX_COLUMNS = ("identifierName", "identifierValue", "label", "reason", "fix", "sourceRow", "row", "outcome")
JOURNAL = "journal.jsonl"
RESULTS = "results.csv"
RETRY = "retry.csv"
FIX = "fix.csv"


def csv_writer(stream: Any) -> Any:
    """The CSV form of every file bulkstatus writes: RFC 4180 line ends (CRLF), minimal quoting.

    With CRLF as the line end, a value holding a bare CR is quoted; with LF alone, Python 3.11's writer
    leaves it bare and every reader takes it for the end of the row.
    """
    return csv.writer(stream, lineterminator="\r\n")


def result_fields(result: Result) -> list[Any]:
    """The part of a result that is not in the input row (what the journal keeps); a tenth field, 1, only
    for a transient failure."""
    fields = [
        result.row.number, str(result.outcome), result.request_id, result.state,
        result.http_status, result.error_code, result.error, result.attempts, result.finished_at,
    ]
    if result.transient:
        fields.append(1)
    return fields


def result_from_fields(row: Row, fields: list[Any]) -> Result:
    _, outcome, request_id, state, http_status, code, error, attempts, finished = fields[:9]
    return Result(row, Outcome(outcome), request_id, state, http_status, code, error, attempts, finished,
                  transient=len(fields) > 9 and bool(fields[9]))


@dataclass
class ResumePoint:
    """What a previous, unfinished run left: rows 1..last_row are complete in the three CSV files."""

    last_row: int = 0
    results_bytes: int = 0
    retry_bytes: int = 0
    fix_bytes: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    redo: Counter[str] = field(default_factory=Counter)  # rows of retry.csv and fix.csv up to last_row
    finished: dict[int, list[Any]] = field(default_factory=dict)  # rows after last_row with an outcome
    # Rows after last_row that were sent but have no outcome, with when they were first sent (epoch s).
    in_doubt: dict[int, float] = field(default_factory=dict)
    maker: Any = None  # the maker's user id, once a create answer told it
    stamp_offset: float | None = None  # the server's zone-less startTime minus our clock (run/doubt.py)
    request_ids: list[str] = field(default_factory=list)  # a few requests the run created

    @property
    def started(self) -> bool:
        return self.last_row > 0 or bool(self.finished) or bool(self.in_doubt)


def _journal_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                return  # a torn last line: the write did not complete, so nothing was recorded
            try:
                item = loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                yield item


# In cells joined after a LF each: one that the csv writer would quote, or that starts like a formula.
_NOT_PLAIN = re.compile('[,"\r]|\n[-=+@\t]')


def _plain(joined: str) -> bool:
    """Whether no cell of ``joined`` (cells joined after a LF each, none holding a LF) needs quoting or a
    guard: ``_NOT_PLAIN`` as substring tests, which scan a 10,000-row batch ten times faster."""
    return not ("," in joined or '"' in joined or "\r" in joined) and _unguarded(joined)


def _unguarded(joined: str) -> bool:
    """Whether no cell of ``joined`` (joined after a LF each) starts like a formula; a LF inside a cell
    may make this False where it is not (the caller then goes the slow, exact way). A start is looked
    for after a LF only if it occurs at all: one character is found ten times faster than two."""
    return not any(start in joined and "\n" + start in joined for start in FORMULA_STARTS)

_QUOTE = re.compile('[,"\r\n]')  # what makes the csv writer (QUOTE_MINIMAL, ",", CRLF) quote a cell


def _quoted(cell: str) -> str:
    """A cell as the csv writer writes it."""
    return '"' + cell.replace('"', '""') + '"' if _QUOTE.search(cell) else cell


def _csv_line(cells: tuple[Any, ...]) -> str:
    buf = io.StringIO()
    csv_writer(buf).writerow(cells)
    return buf.getvalue()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def output_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = f"free space on the disk of {str(path.parent)!r}"
    else:
        fix = f"check the disk of {str(path.parent)!r}"
    return OutputError(f"cannot write {str(path)!r} ({reason}): {fix}, then `bulkstatus resume {path.parent}`")


def _drop_torn_tail(path: Path) -> None:
    """A journal whose last write was cut short ends in part of a line: cut it back to its last full
    line, so that what is appended next is not glued to it (that part recorded nothing)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:  # no line end in the last 64 KiB: scan from the start
            fh.seek(0)
            keep = fh.read().rfind(b"\n") + 1
        fh.truncate(keep)


def read_resume_point(folder: Path) -> ResumePoint:
    """Scan the journal twice: find the last checkpoint, then the rows after it."""
    point = ResumePoint()
    path = folder / JOURNAL
    if not path.exists():
        return point
    # A checkpoint counts only if the CSV files hold the bytes it names (a sync that failed, a file
    # cut short by hand): the last one that they do. One without retry.csv and fix.csv (a folder of an
    # earlier version, which wrote failed.csv) does not: the files are then rebuilt from the journal.
    sizes = (_size(folder / RESULTS), _size(folder / RETRY), _size(folder / FIX))
    for item in _journal_lines(path):
        if "k" in item and "yb" in item and "xb" in item and (
                item["rb"] <= sizes[0] and item["yb"] <= sizes[1] and item["xb"] <= sizes[2]):
            point.last_row, point.results_bytes = item["k"], item["rb"]
            point.retry_bytes, point.fix_bytes = item["yb"], item["xb"]
            point.counts = Counter(item.get("n", {}))
            point.redo = Counter(item.get("x", {}))
    for item in _journal_lines(path):
        if "s" in item:
            if item["s"] > point.last_row and item["s"] not in point.in_doubt:
                point.in_doubt[item["s"]] = float(item.get("t", 0.0))
        elif "f" in item:
            number = item["f"][0]
            if len(point.request_ids) < 3 and item["f"][2]:
                point.request_ids.append(str(item["f"][2]))
            if number > point.last_row:
                point.finished[number] = item["f"]
                point.in_doubt.pop(number, None)
        elif "m" in item:
            point.maker = item["m"]
            if item.get("o") is not None:
                point.stamp_offset = float(item["o"])
    return point


class Recorder:
    """Owns journal.jsonl, results.csv, retry.csv and fix.csv of one run folder."""

    def __init__(self, folder: Path, resume: ResumePoint | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        point = resume or ResumePoint()
        self.failure: OutputError | None = None  # the first write that failed; nothing is written after it
        _drop_torn_tail(folder / JOURNAL)
        self._journal = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._results = self._open_csv(folder / RESULTS, point.results_bytes, RESULT_COLUMNS)
        self._retry = self._open_csv(folder / RETRY, point.retry_bytes, RETRY_COLUMNS)
        self._fix = self._open_csv(folder / FIX, point.fix_bytes, FIX_COLUMNS)
        # (a header that cannot be written is an OutputError from _open_csv: nothing was sent yet)
        self._journal_buf: list[bytes] = []
        self._results_buf = io.StringIO()
        self._retry_buf = io.StringIO()
        self._fix_buf = io.StringIO()
        self._results_csv = csv_writer(self._results_buf)
        self._retry_csv = csv_writer(self._retry_buf)
        self._fix_csv = csv_writer(self._fix_buf)
        self._files = ((self._results, self._results_buf, RESULTS), (self._retry, self._retry_buf, RETRY),
                       (self._fix, self._fix_buf, FIX))
        self._pending: dict[int, Result] = {}
        self._next_row = point.last_row + 1
        self.counts: Counter[str] = Counter(point.counts)
        self.redo: Counter[str] = Counter(point.redo)  # rows written to retry.csv and fix.csv
        self._dirty = False
        self._frozen = False  # an unprocessed row was written: no checkpoint may pass it
        # Rows sent (now or by an earlier session) without a final outcome yet: left unprocessed, they
        # are *in doubt* and stay out of retry.csv, since a re-run of it could make their request twice.
        self._sent: set[int] = set(point.in_doubt)
        self.in_doubt = 0  # of the unprocessed rows written, those in doubt
        self._closed = False

    @staticmethod
    def _open_csv(path: Path, keep_bytes: int, columns: tuple[str, ...]) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            # Resume cuts the file back to the last checkpoint; a new run starts it empty.
            os.ftruncate(fd, keep_bytes)
            os.lseek(fd, keep_bytes, os.SEEK_SET)
            if keep_bytes == 0:
                header = _csv_line(columns).encode("utf-8")
                if os.write(fd, header) != len(header):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            raise output_error(path, exc) from None
        return fd

    @property
    def next_row(self) -> int:
        """The first row not yet written to results.csv."""
        return self._next_row

    @property
    def waiting(self) -> int:
        """Rows finished but held back until an earlier row finishes."""
        return len(self._pending)

    def sending(self, row_number: int) -> float:
        """Mark a row in flight; returns (the time it records) once the line has reached the OS.

        The time lets a resume look the row up among the requests created since, not all of the run's.
        """
        now = time.time()
        self._journal_buf.append(b'{"s":%d,"t":%.3f}\n' % (row_number, now))
        self._write_journal()  # OutputError when it cannot be written: then the request is not sent
        self._sent.add(row_number)
        return now

    def note_maker(self, maker: Any, stamp_offset: float | None) -> None:
        """The maker's user id and the server's stamp clock, for a resume that must tell this run's
        requests from others'."""
        self._journal_buf.append(dumps({"m": maker, "o": stamp_offset}) + b"\n")
        self._write_journal()

    def record(self, result: Result) -> None:
        """Keep a row's outcome. It reaches the disk with the next batch (see ``flush``).

        An ``unprocessed`` row is written to the CSV files but not to the journal, and no checkpoint
        goes past it: resume must do that row, so the files are cut back to just before it.
        """
        if result.error:  # server text may quote what we sent
            result = dataclasses.replace(result, error=scrub(result.error))
        if result.outcome is not Outcome.UNPROCESSED:
            self._journal_buf.append(dumps({"f": result_fields(result)}) + b"\n")
            self._sent.discard(result.row.number)
        self._pending[result.row.number] = result
        self._dirty = True
        while self._next_row in self._pending:
            done = self._pending.pop(self._next_row)
            if done.outcome is Outcome.UNPROCESSED and not self._frozen:
                self._write_batch()
                self._frozen = True
            self._write_rows(done)
            self._next_row += 1

    def unprocessed(self, rows: list[tuple[int, str, str, str, str, int]], error: str, doubt_error: str) -> None:
        """Record ``rows`` (number, identifierName, identifierValue, label, reason, origin: the next ones in
        input order, none sent in this session) as unprocessed, straight into results.csv and retry.csv: the
        rest of a stopped run, a million rows in seconds. A row sent by an earlier session and not settled
        stays in doubt (``doubt_error``; not in retry.csv)."""
        if not rows:
            return
        assert not self._pending and rows[0][0] == self._next_row, "rows out of order"
        if not self._frozen:  # as record() does for the first unprocessed row: no checkpoint past it
            self._write_batch()
            self._frozen = True
        stamp = stamp_ms()
        outcome = str(Outcome.UNPROCESSED)
        starts = FORMULA_STARTS
        count, last = len(rows), rows[-1][0]
        sent = self._sent
        # The csv writer costs 4 us a row; a row none of whose cells needs quoting is joined by hand, with
        # the fixed cells formatted once by the writer itself (so the bytes are the writer's).
        results_tail = _csv_line((outcome, "", "", "", "", error, 0, stamp))
        doubt_tail = _csv_line((outcome, "", "", "", "", doubt_error, 0, stamp))
        retry_tail = _csv_line((outcome, error))
        results_buf, retry_buf = self._results_buf, self._retry_buf
        retried = count
        if not (sent and any(row[0] in sent for row in rows)):
            # The whole batch by hand when one pass over its first three columns shows that none needs
            # quoting (a comma, a quote, CR or LF) nor a guard (starts like a formula), and one pass over
            # its reasons that none needs a guard: then only a reason may need quoting, looked at with
            # plain `in` tests (a regex per cell costs twice as much). Else row by row below.
            head = "".join([f"\n{a}\n{b}\n{c}" for _, a, b, c, _, _ in rows])
            reasons = [row[4] for row in rows]
            tails = "\n" + "\n".join(reasons)
            if head.count("\n") == 3 * len(rows) and _plain(head) and _unguarded(tails):
                if tails.count("\n") == len(rows) and _plain(tails):
                    cells = reasons  # none needs quoting either
                else:
                    cells = ['"' + d.replace('"', '""') + '"' if ("," in d or '"' in d or "\n" in d or "\r" in d)
                             else d for d in reasons]
                self._write_batch()  # (what is buffered goes first) then straight to the files
                numbers = [(str(r[0]), str(r[5] or r[0])) for r in rows]
                lines = [f"{r[1]},{r[2]},{r[3]},{d}" for r, d in zip(rows, cells, strict=True)]
                self._write_all(self._results, "".join([f"{n},{s},{line},{results_tail}" for (n, s), line
                                                        in zip(numbers, lines, strict=True)]).encode("utf-8"), RESULTS)
                self._write_all(self._retry, "".join([f"{line},{s},{n},{retry_tail}" for (n, s), line
                                                      in zip(numbers, lines, strict=True)]).encode("utf-8"), RETRY)
                rows = []  # all written
        results, retry = [], []
        for number, a, b, c, d, origin in rows:
            # Only a reason usually needs quoting (a comma, a quote): the others are looked at one by one
            # only when one of them starts like a formula or holds what the writer quotes.
            if _NOT_PLAIN.search(f"\n{a}\n{b}\n{c}") or "\n" in a or "\n" in b or "\n" in c:
                head = ",".join([_quoted(safe(v) if v.startswith(starts) else v) for v in (a, b, c)])
            else:
                head = f"{a},{b},{c}"
            line = f"{head},{_quoted(safe(d) if d.startswith(starts) else d)}"
            source = origin or number
            if number in sent:
                self.in_doubt += 1
                retried -= 1
                results.append(f"{number},{source},{line},{doubt_tail}")
            else:
                results.append(f"{number},{source},{line},{results_tail}")
                retry.append(f"{line},{source},{number},{retry_tail}")
        results_buf.write("".join(results))
        retry_buf.write("".join(retry))
        self.counts[outcome] += count
        self.redo[Redo.RETRY.value] += retried
        self._next_row = last + 1
        self._write_batch()

    def _write_rows(self, result: Result) -> None:
        row = result.row
        self.counts[str(result.outcome)] += 1
        name, value, label, reason, error = (safe(row.identifier_name), safe(row.identifier_value),
                                             safe(row.label), safe(row.reason), safe(result.error))
        source = row.origin or row.number
        self._results_csv.writerow((
            row.number, source, name, value, label, reason,
            str(result.outcome), result.request_id, result.state,
            "" if result.http_status is None else result.http_status, result.error_code, error,
            result.attempts, result.finished_at,
        ))
        in_doubt = result.outcome is Outcome.UNPROCESSED and row.number in self._sent
        if in_doubt:
            self.in_doubt += 1
        again = redo(result.outcome, result.transient, in_doubt)
        if again is Redo.RETRY:
            self._retry_csv.writerow((name, value, label, reason, source, row.number, str(result.outcome), error))
        elif again is Redo.FIX:
            fix = error if result.outcome is Outcome.INVALID else safe(fix_for(result))
            self._fix_csv.writerow((name, value, label, reason, fix, source, row.number, str(result.outcome)))
        if again is not None:
            self.redo[again.value] += 1

    def _write_journal(self) -> None:
        if self._journal_buf:
            self._write_all(self._journal, b"".join(self._journal_buf), JOURNAL)
            self._journal_buf.clear()

    def _write_all(self, fd: int, data: bytes, name: str) -> None:
        """Every byte, or OutputError: a short write is followed up, a failed one stops the run. After a
        failure nothing more is written (the next checkpoint could claim bytes that are not there); resume
        cuts the files back to the last checkpoint and drops a torn journal line."""
        if self.failure is not None:
            raise self.failure
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            self.failure = output_error(self.folder / name, exc)
            raise self.failure from None

    def flush(self) -> None:
        """Write the batch: outcomes to the journal first, then the CSV lines, then a checkpoint."""
        if self._dirty:
            self._write_batch()
            self._dirty = False

    def _write_batch(self) -> None:
        self._write_journal()
        for fd, buf, name in self._files:
            data = buf.getvalue()
            if data:
                self._write_all(fd, data.encode("utf-8"), name)
                buf.seek(0)
                buf.truncate()
        if self._frozen:
            return
        checkpoint = {
            "k": self._next_row - 1,
            "rb": os.lseek(self._results, 0, os.SEEK_CUR),
            "yb": os.lseek(self._retry, 0, os.SEEK_CUR),
            "xb": os.lseek(self._fix, 0, os.SEEK_CUR),
            "n": dict(self.counts),
            "x": dict(self.redo),
        }
        self._journal_buf.append(dumps(checkpoint) + b"\n")
        self._write_journal()

    def sync(self) -> None:
        """Force what was written onto the disk (run on a timer, off the event loop)."""
        for fd, name in ((self._journal, JOURNAL), *((fd, name) for fd, _, name in self._files)):
            try:
                os.fsync(fd)
            except OSError as exc:  # a network filesystem may say it only now
                if self.failure is None:
                    self.failure = output_error(self.folder / name, exc)
                raise self.failure from None

    def close(self) -> None:
        """Flush, sync and close; raises the OutputError of a write that failed (the files are closed)."""
        if self._closed:
            return
        try:
            if self.failure is None:
                self.flush()
                self.sync()
        finally:
            for fd in (self._journal, self._results, self._retry, self._fix):
                os.close(fd)
            self._closed = True
        if self.failure is not None:
            raise self.failure
