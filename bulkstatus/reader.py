"""Reading the input CSV: open, detect encoding and delimiter, match the header, stream checked rows.

pandas parses the file (python engine, every value a string) in chunks of `chunk_rows`. The python
engine is used, not the faster C one, because it is the only one that tells a missing cell (NaN) from an
empty one (""); the C engine pads short rows with "" and refuses the whole file on a long row. Two
sentinel columns past the header, read with `usecols`, turn a long row into data instead of an error, so
that every row comes back, too short or too long, and is marked invalid rather than dropped.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gc
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import numpy as np
import pandas as pd

from bulkstatus import checks
from bulkstatus.checks import CheckedRow, RowRules
from bulkstatus.errors import InputFileError
from bulkstatus.model import IDENTIFIER_NAMES

__all__ = ["COLUMNS", "CheckedRow", "InputReader", "ReadOptions", "check_structure", "count_data_rows"]

COLUMNS = ("identifierName", "identifierValue", "label", "reason")
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t"}
SAMPLE_BYTES = 64 * 1024  # what the header, encoding and delimiter are detected from
FIRST_CHUNK_ROWS = 1_000
_SENTINELS = 2  # columns read past the header: one (empty) extra cell is tolerated, two are "too many"
_BY_ALIAS = {c.lower(): c for c in COLUMNS}
_MAGIC = {
    b"PK\x03\x04": "is an Excel workbook or other zip archive, not a CSV file; in Excel use "
                   'File > Save As > "CSV UTF-8 (Comma delimited)"',
    b"\xd0\xcf\x11\xe0": 'is an old Excel workbook (.xls), not a CSV file; in Excel use File > Save As > '
                         '"CSV UTF-8 (Comma delimited)"',
    b"\x1f\x8b": "is gzip-compressed; decompress it first (gunzip)",
    b"%PDF": "is a PDF document, not a CSV file",
}


@dataclass(frozen=True, slots=True)
class ReadOptions:
    encoding: str | None = None  # None: UTF-8 (with or without BOM) or UTF-16 with BOM, detected
    delimiter: str | None = None  # None: detect among , ; TAB
    default_label: str | None = None  # used when the label cell is empty or the column is absent
    default_reason: str | None = None
    allowed_labels: frozenset[str] | None = None  # None or empty: any label
    chunk_rows: int = 10_000


def count_data_rows(path: str | Path) -> int | None:
    """Approximate number of data rows (lines minus the header) for a progress total; None if unknown.

    Counts line-break bytes, so blank lines and line breaks inside quoted values count too; a file
    with no LF at all is taken to end its lines with CR (Excel's "CSV (Macintosh)")."""
    lf = cr = 0
    last = b""
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                # numpy counts a byte three times faster than bytes.count (0.02 s per million rows).
                lf += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))
                if not lf:  # CR counts only in a file with no LF at all
                    cr += block.count(b"\r")
                last = block[-1:]
    except OSError:
        return None
    lines = lf or cr
    if last and last not in b"\r\n":
        lines += 1
    return max(lines - 1, 0)


def check_structure(path: str | Path, options: ReadOptions = ReadOptions()) -> None:
    """Raise InputFileError for any problem that would stop reading midway (header, undecodable
    bytes, a broken quote), without checking rows: one C-speed pass.

    InputReader checks a file up to SAMPLE_BYTES whole on opening; for a longer one, a run calls this
    before sending anything so that a file broken far down sends nothing either. A file with no quote
    character is only decoded (about 0.05 s per million rows, so a run starts sending at once); one with
    quotes is parsed whole by csv (about a second per million rows)."""
    with InputReader(path, options) as reader:
        if _decodes_without_quotes(reader):
            return
        with open(reader.path, encoding=reader.encoding, newline="") as f:
            try:
                for _ in csv.reader(f, delimiter=reader.delimiter, strict=True):
                    pass
            except UnicodeDecodeError:
                raise reader._decode_error() from None
            except csv.Error:
                raise reader._csv_error(reader.delimiter) from None


def _decodes_without_quotes(reader: InputReader) -> bool:
    """True when the whole file decodes, holds no quote character and no line near csv's field limit.

    Strict csv can then fail on nothing: its errors are about quotes (a quoted value never closed, text
    after a closing quote) and about fields longer than the limit. Lines are bounded cheaply: every
    whole quarter-limit piece of each decoded block must hold a line break, so no run of characters
    without one reaches three quarters of the limit. False as soon as a quote (or a long line) shows up:
    the caller's csv pass then checks everything, decoding included."""
    quarter = max(1, csv.field_size_limit() // 4)
    decoder = codecs.getincrementaldecoder(reader.encoding)()
    with open(reader.path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                raise reader._decode_error() from None
            if '"' in text:
                return False
            for start in range(0, len(text) - quarter + 1, quarter):
                end = start + quarter
                if text.find("\n", start, end) < 0 and text.find("\r", start, end) < 0:
                    return False
            if not block:
                return True


def _alias(cell: str) -> str:
    """How header cells are compared: case, surrounding spaces, `_`, `-` and inner spaces ignored."""
    return re.sub(r"[\s_\-]", "", cell.lower())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is parsed and checked.

    A chunk allocates several container objects per row and no reference cycles, so the collector
    would run every few hundred rows and find nothing; pausing it makes reading ~30% faster. Memory
    is unaffected: reference counting still frees everything, and the collector runs between chunks."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cell(value: object) -> str:
    return value if isinstance(value, str) else ""


def _first_records(text: str, delimiter: str, whole: bool = False) -> tuple[list[str] | None, bool, bool]:
    """The first non-blank record of `text` (the header), whether another follows, and whether
    parsing stopped at an error (looking at all of `text` if `whole`)."""
    header: list[str] | None = None
    has_data = False
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True):
            if not any(cell.strip(checks.TRIM_CHARS) for cell in record):
                continue
            if header is None:
                header = record
                header[0] = header[0].lstrip("\ufeff")
            else:
                has_data = True
                if not whole:
                    break
    except csv.Error:
        return header, header is not None, True
    return header, has_data, False


def _lines(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class InputReader:
    """One input file; the constructor checks everything that can be checked from its start.

    Iterating yields lists of CheckedRow in input order; rows are numbered 1, 2, ... after the header,
    not counting blank rows (every cell empty), which are skipped and counted in `skipped_empty_rows`."""

    def __init__(self, path: str | Path, options: ReadOptions = ReadOptions()) -> None:
        self.path = Path(path)
        self.options = options
        self.rows_read = 0
        self.skipped_empty_rows = 0
        self._rules = RowRules(options.default_label or None, options.default_reason or None,
                               options.allowed_labels or None)
        self._started = False
        self._text: io.TextIOWrapper | None = None
        self._binary = self._open()
        try:
            sample = self._binary.read(SAMPLE_BYTES)
            at_eof = len(sample) < SAMPLE_BYTES
            self.encoding = self._choose_encoding(sample)
            text = self._decode_sample(sample, at_eof)
            self.delimiter, self.columns, has_data = self._sniff(text, at_eof)
            self._index = self._match_header()
            # A header ending in empty names (a trailing delimiter) does not make shorter rows too short.
            self._named = max(i for i, c in enumerate(self.columns) if c.strip(checks.TRIM_CHARS)) + 1
            if at_eof and not has_data:
                raise self._error("has a header but no data rows; add one row per customer below it")
        except BaseException:
            self.close()
            raise

    # --- opening and detection -------------------------------------------------------------------

    def _error(self, what: str) -> InputFileError:
        return InputFileError(f"{self.path}: {what}")

    def _open(self) -> BinaryIO:
        try:
            binary = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise self._error("no such file; check the path") from None
        except IsADirectoryError:
            raise self._error("is a directory, not a CSV file") from None
        except OSError as e:
            raise self._error(f"cannot be opened ({e.strerror}); check its permissions") from None
        return binary

    def _choose_encoding(self, sample: bytes) -> str:
        if not sample:
            raise self._error("is empty; it needs a header line identifierName,identifierValue,label,reason "
                              "and one row per customer")
        for magic, what in _MAGIC.items():
            if sample.startswith(magic):
                raise self._error(what)
        bom = "utf-16" if sample[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None
        if sample.startswith(codecs.BOM_UTF8):
            bom = "utf-8-sig"
        if self.options.encoding is None:
            return bom or "utf-8"
        try:
            name = codecs.lookup(self.options.encoding).name
        except LookupError:
            raise self._error(f'unknown encoding "{self.options.encoding}"; use utf-8, utf-16, cp1252 or '
                              "latin-1") from None
        # `--encoding utf-8` on a file saved with a BOM: the BOM is not part of the first column name.
        return "utf-8-sig" if name == "utf-8" and bom == "utf-8-sig" else name

    def _decode_sample(self, sample: bytes, at_eof: bool) -> str:
        # NUL bytes: UTF-16 without a BOM (every other byte) or not text at all. Checked before
        # decoding because such a file would otherwise be reported as having undecodable bytes.
        wide = self.encoding.startswith(("utf-16", "utf-32"))
        if not wide and b"\x00" in sample:
            head = sample[:4096]
            if max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 4:
                raise self._error("looks like UTF-16 without a byte-order mark; save it as CSV UTF-8, or "
                                  "pass --encoding utf-16-le (or utf-16-be)")
            raise self._error("is not a text file (it contains NUL bytes); save the sheet as CSV UTF-8")
        try:
            text = codecs.getincrementaldecoder(self.encoding)().decode(sample, final=at_eof)
        except UnicodeDecodeError:
            raise self._decode_error() from None
        if "\x00" in text:
            raise self._error("is not a text file (it contains NUL characters); save the sheet as CSV UTF-8")
        return text

    def _sniff(self, text: str, at_eof: bool) -> tuple[str, list[str], bool]:
        """Delimiter, header cells, and whether a data row follows the header in `text`."""
        forced = self.options.delimiter
        if forced is not None:
            forced = _DELIMITER_NAMES.get(forced.lower(), forced)
            if len(forced) != 1 or forced in '"\r\n':
                raise self._error(f'--delimiter must be one character such as , ; or tab, not "{forced}"')
        best: tuple[int, int, str, list[str], bool, bool] | None = None
        for delimiter in (forced,) if forced else DELIMITERS:
            header, has_data, broken = _first_records(text, delimiter)
            if header is None:
                continue
            matched = sum(_alias(cell) in _BY_ALIAS for cell in header)
            if best is None or (matched, len(header)) > best[:2]:
                best = (matched, len(header), delimiter, header, has_data, broken)
        if best is None:
            if text.strip(checks.TRIM_CHARS + "\r\n"):
                raise self._csv_error(forced or ",")
            raise self._error("contains only blank lines; it needs a header line "
                              "identifierName,identifierValue,label,reason and one row per customer")
        # A file that fits in the sample is parsed whole now, so that a broken quote stops it before
        # anything is sent. In a longer sample the last record may be cut, so errors wait for __iter__.
        if at_eof and (best[5] or _first_records(text, best[2], whole=True)[2]):
            raise self._csv_error(best[2])
        return best[2], best[3], best[4]

    def _match_header(self) -> dict[str, int]:
        """Position of each known column; raises when one is missing, ambiguous or misspelt."""
        found: dict[str, int] = {}
        for position, cell in enumerate(self.columns):
            column = _BY_ALIAS.get(_alias(cell))
            if column is None:
                continue
            if column in found:
                first = self.columns[found[column]]
                raise self._header_error(f'column {column} appears twice ("{checks.show(first)}" and '
                                         f'"{checks.show(cell)}"); remove or rename one')
            found[column] = position
        first = self.columns[0]
        second = self.columns[1] if len(self.columns) > 1 else ""
        if not found and (_alias(first) in IDENTIFIER_NAMES or "@" in second or second.strip(" +").isdigit()):
            raise self._error(f'has no header row (the first line "{checks.show(",".join(self.columns))}" '
                              "looks like data); add the line identifierName,identifierValue,label,reason "
                              "at the top")
        hint = " (if the file uses another delimiter, pass --delimiter)" if len(self.columns) == 1 else ""
        for column, default in zip(COLUMNS, (None, None, self._rules.default_label, self._rules.default_reason),
                                   strict=True):
            if column not in found and default is None:
                fix = (f" and no default {column} is set; add a {column} column or pass --{column}"
                       if column in ("label", "reason") else hint)
                raise self._header_error(f"column {column} is missing{self._did_you_mean(column, found)}{fix}")
        return found

    def _did_you_mean(self, column: str, found: dict[str, int]) -> str:
        """The unrecognised column most like ``column``, if ``column`` is also the one it is most like
        (so that ``identifer_value`` is offered for identifierValue, never for identifierName)."""
        best: tuple[float, str] | None = None
        for i, cell in enumerate(self.columns):
            if i in found.values():
                continue
            ratios = {name: difflib.SequenceMatcher(None, _alias(cell), name.lower()).ratio() for name in COLUMNS}
            target = max(ratios, key=lambda name: ratios[name])
            if target == column and ratios[target] >= 0.6 and (best is None or ratios[target] > best[0]):
                best = (ratios[target], cell)
        return f' (did you mean "{checks.show(best[1])}"? rename it to {column})' if best else ""

    def _header_error(self, what: str) -> InputFileError:
        listed = ", ".join(checks.show(c, 30) for c in self.columns)
        return self._error(f"{what}; found columns: {listed}; expected: {', '.join(COLUMNS)} "
                           "(label and reason may be left out when --label/--reason give defaults)")

    # --- errors found anywhere in the file, located by a second, cheap pass --------------------

    def _decode_error(self) -> InputFileError:
        decoder = codecs.getincrementaldecoder(self.encoding)()
        line = 1
        with open(self.path, "rb") as f:
            while True:
                block = f.read(1 << 20)
                try:
                    line += _lines(decoder.decode(block, final=not block))
                except UnicodeDecodeError as e:
                    line += _lines(e.object[: e.start].decode(self.encoding, errors="replace"))
                    bad = e.object[e.start : e.end].hex(" ")
                    break
                if not block:
                    return self._error(f"cannot be decoded as {self.encoding}; pass --encoding")
        fix = "--encoding latin-1" if self.encoding == "cp1252" else "--encoding cp1252 (Windows-1252)"
        return self._error(f"line {line} has bytes that are not valid {self.encoding} ({bad}); if the file "
                           f"was saved by Excel on Windows, run again with {fix}, or save it as CSV UTF-8")

    def _csv_error(self, delimiter: str) -> InputFileError:
        with open(self.path, encoding=self.encoding, errors="replace", newline="") as f:
            records = csv.reader(f, delimiter=delimiter, strict=True)
            start = 1
            try:
                for _ in records:
                    start = records.line_num + 1
            except csv.Error as e:
                reason = str(e)
            else:
                return self._error("cannot be parsed as CSV; check its quotes")
        if "end of data" in reason:
            what = (f"a quoted value that starts on line {start} is never closed; add the missing "
                    '" or remove the stray one')
        elif "field limit" in reason:
            what = (f"line {start} starts a value longer than {csv.field_size_limit()} characters; a quote "
                    '" opened there is probably never closed')
        elif "expected after" in reason:
            what = (f'line {start} has text right after a closing quote (like "abc"d); quote the whole '
                    'value and double the quotes inside it ("abc""d")')
        else:
            what = f"line {start} cannot be parsed as CSV ({reason}); check its quotes"
        return self._error(what)

    # --- streaming -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list[CheckedRow]]:
        if self._started:
            raise RuntimeError("an InputReader can be iterated only once")
        self._started = True
        self._binary.seek(0)
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, newline="")
        names = [f"c{i}" for i in range(len(self.columns) + _SENTINELS)]
        header_pending = True
        try:
            chunks = pd.read_csv(
                self._text, sep=self.delimiter, header=None, names=names, usecols=names, index_col=False,
                dtype=str, keep_default_na=False, na_filter=False, engine="python", on_bad_lines="error",
                chunksize=max(1, self.options.chunk_rows), skip_blank_lines=True, quotechar='"',
            )
            # The first chunk is small, so that a run's first request waits for 1,000 rows, not 10,000.
            size: int | None = min(FIRST_CHUNK_ROWS, max(1, self.options.chunk_rows))
            while True:
                with _collector_paused():
                    try:
                        frame = chunks.get_chunk(size)
                    except StopIteration:
                        break
                    size = None  # chunk_rows from now on
                    rows, header_pending = self._check_frame(frame, header_pending)
                if rows:
                    yield rows
        except UnicodeDecodeError:
            raise self._decode_error() from None
        except (pd.errors.ParserError, csv.Error):
            raise self._csv_error(self.delimiter) from None

    def _check_frame(self, frame: pd.DataFrame, header_pending: bool) -> tuple[list[CheckedRow], bool]:
        width = len(self.columns)
        cells: list[int] = frame.notna().to_numpy().sum(axis=1).tolist()
        grid: Any = None  # every cell, as an object array, built only if a row needs a closer look

        def blank(i: int) -> bool:
            nonlocal grid
            if grid is None:
                grid = frame.to_numpy(dtype=object)
            return not any(isinstance(v, str) and v.strip(checks.TRIM_CHARS) for v in grid[i])

        start = 0
        if header_pending:  # the header is the first row with a non-empty cell
            while start < len(frame) and blank(start):
                start += 1
            if start == len(frame):
                return [], True
            start += 1
        columns: list[Iterable[Any]] = [
            frame.iloc[start:, self._index[c]].tolist() if c in self._index else repeat(None) for c in COLUMNS
        ]
        out: list[CheckedRow] = []
        rules = self._rules
        for i, name, value, label, reason in zip(range(start, len(frame)), *columns, strict=False):
            count = cells[i]
            if (count != width or not (name.strip() or value.strip())) and blank(i):
                self.skipped_empty_rows += 1
                continue
            self.rows_read += 1
            if count == width:
                out.append(checks.check_row(self.rows_read, name, value, label, reason, rules))
                continue
            # Too short (missing cells are NaN) or too long (a sentinel column holds a value).
            name, value, label, reason = (_cell(v) for v in (name, value, label, reason))
            if self._named <= count < width:  # only cells of unnamed trailing columns are missing
                out.append(checks.check_row(self.rows_read, name, value, label, reason, rules))
            elif count == width + 1 and not _cell(grid[i][width]).strip(checks.TRIM_CHARS):
                out.append(checks.check_row(self.rows_read, name, value, label, reason, rules))
                out[-1].notes.append("an empty cell after the last column was ignored")
            else:
                shape = checks.shape_problem(count, width, at_least=count == width + _SENTINELS)
                out.append(checks.check_row(self.rows_read, name, value, label, reason, rules, shape))
        return out, False

    def close(self) -> None:
        if self._text is not None:
            self._text.detach()
            self._text = None
        self._binary.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
