"""Reading the input CSV: stream checked rows, once `sniff` has found the encoding, delimiter and header.

pandas parses the file (python engine, every value a string) in chunks of `chunk_rows`. The python
engine is used, not the faster C one, because it is the only one that tells a missing cell (NaN) from an
empty one (""); the C engine pads short rows with "" and refuses the whole file on a long row. Two
sentinel columns past the header, read with `usecols`, turn a long row into data instead of an error, so
that every row comes back, too short or too long, and is marked invalid rather than dropped.

`check_structure` and `count_data_rows` (whole-file passes before a run) live in `structure` and are
importable from here too.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice, repeat
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from bulkstatus.input.locate import csv_error, decode_error
from bulkstatus.input.rules import (
    EDGE_CHARS,
    TRIM_CHARS,
    CheckedRow,
    RowRules,
    check_row,
    normalise,
    shape_problem,
    source_row,
)
from bulkstatus.input.sniff import COLUMNS, DEFAULT_OPTIONS, SAMPLE_BYTES, SOURCE_COLUMN, ReadOptions, open_input
from bulkstatus.input.structure import check_structure, count_data_rows
from bulkstatus.input.workbook import open_workbook

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "SAMPLE_BYTES", "CheckedRow", "InputReader", "ReadOptions", "RestColumns", "RestRow",
           "check_structure", "count_data_rows"]

# A row of a stopped run's rest: (number, identifierName, identifierValue, label, reason, origin), as Row takes them.
RestRow = tuple[int, str, str, str, str, int]
# Consecutive rows of a stopped run's rest, a column at a time: (first number, names, values, labels).
RestColumns = tuple[int, Sequence[str], Sequence[str], Sequence[str]]

FIRST_CHUNK_ROWS = 1_000
_SENTINELS = 2  # columns read past the header: one (empty) extra cell is tolerated, two are "too many"


@contextmanager
def collector_paused() -> Iterator[None]:
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


class InputReader:
    """One input file; the constructor checks everything that can be checked from its start.

    Iterating yields lists of CheckedRow in input order; rows are numbered 1, 2, ... after the header,
    not counting blank rows (every cell empty), which are skipped and counted in `skipped_empty_rows`."""

    def __init__(self, path: str | Path, options: ReadOptions = DEFAULT_OPTIONS) -> None:
        self.path = Path(path)
        self.options = options
        self.rows_read = 0
        self.skipped_empty_rows = 0
        self._rules = RowRules(options.default_label or None, options.default_reason or None,
                               options.allowed_labels or None, options.default_name or None)
        self._started = False
        self._text: io.TextIOWrapper | None = None
        # An .xlsx, .xls or .ods workbook is read by its own reader (bulkstatus.input.workbook).
        self._book = open_workbook(self.path, options)
        self.sheet = self._book.sheet if self._book is not None else None
        if self._book is not None:
            self._binary, layout = self._book.binary, self._book.layout
        else:
            self._binary, layout = open_input(self.path, options)
        self.encoding = layout.encoding
        self.delimiter = layout.delimiter
        self.columns = layout.columns
        self._index = layout.index
        self._named = layout.named

    # --- streaming -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list[CheckedRow]]:
        if self._started:
            raise RuntimeError("an InputReader can be iterated only once")
        self._started = True
        if self._book is not None:
            for rows in self._book.checked(self._rules, self.options.chunk_rows):
                self.rows_read = rows[-1].row.number
                self.skipped_empty_rows = self._book.skipped_empty_rows
                yield rows
            self.skipped_empty_rows = self._book.skipped_empty_rows
            return
        import pandas as pd  # here, not above: a workbook's run never needs it (40 MB of the process)

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
                with collector_paused():
                    try:
                        frame = chunks.get_chunk(size)
                    except StopIteration:
                        break
                    size = None  # chunk_rows from now on
                    rows, header_pending = self._check_frame(frame, header_pending)
                if rows:
                    yield rows
        except UnicodeDecodeError:
            raise decode_error(self.path, self.encoding) from None
        except (pd.errors.ParserError, csv.Error):
            raise csv_error(self.path, self.encoding, self.delimiter) from None

    def _check_frame(self, frame: pd.DataFrame, header_pending: bool) -> tuple[list[CheckedRow], bool]:
        width = len(self.columns)
        cells: list[int] = frame.notna().to_numpy().sum(axis=1).tolist()
        grid: Any = None  # every cell, as an object array, built only if a row needs a closer look

        def blank(i: int) -> bool:
            nonlocal grid
            if grid is None:
                grid = frame.to_numpy(dtype=object)
            return not any(isinstance(v, str) and v.strip(TRIM_CHARS) for v in grid[i])

        start = 0
        if header_pending:  # the header is the first row with a non-empty cell
            while start < len(frame) and blank(start):
                start += 1
            if start == len(frame):
                return [], True
            start += 1
        columns: list[Iterable[Any]] = [
            frame.iloc[start:, self._index[c]].tolist() if c in self._index
            else repeat("" if c == "identifierName" else None)  # (--identifier-name fills it in)
            for c in (*COLUMNS, SOURCE_COLUMN)
        ]
        out: list[CheckedRow] = []
        rules = self._rules
        for i, name, value, label, reason, source in zip(range(start, len(frame)), *columns, strict=False):
            count = cells[i]
            if (count != width or not (name.strip() or value.strip())) and blank(i):
                self.skipped_empty_rows += 1
                continue
            self.rows_read += 1
            if count == width:
                out.append(check_row(self.rows_read, name, value, label, reason, rules, None, source))
                continue
            # Too short (missing cells are NaN) or too long (a sentinel column holds a value).
            name, value, label, reason, source = (_cell(v) for v in (name, value, label, reason, source))
            if self._named <= count < width:  # only cells of unnamed trailing columns are missing
                out.append(check_row(self.rows_read, name, value, label, reason, rules, None, source))
            elif count == width + 1 and not _cell(grid[i][width]).strip(TRIM_CHARS):
                out.append(check_row(self.rows_read, name, value, label, reason, rules, None, source))
                out[-1].notes.append("an empty cell after the last column was ignored")
            else:
                shape = shape_problem(count, width, at_least=count == width + _SENTINELS)
                out.append(check_row(self.rows_read, name, value, label, reason, rules, shape, source))
        return out, False

    def rest(self, after: int, batch: int = 10_000) -> Iterator[list[RestRow]]:
        """The rows numbered after ``after``, in lists of up to ``batch``, read again from the start with
        the csv module alone (pandas parses with it too, so the cells are the same) and numbered as
        iterating does: for recording the rows a stopped run did not reach, a million in a few seconds.
        Each is (number, identifierName, identifierValue, label, reason, origin) as check_row gives them
        (trimmed, Excel guards unwrapped, defaults filled, origin from a sourceRow column or 0); no row is
        checked, as none of them is sent."""
        if self._book is not None:  # a workbook's rest is read and checked as iterating does: slower, the same
            yield from self._book.rest(after, self._rules, batch)
            return
        for first, block in self._rest(after, batch):
            if first:  # four plain cells a row, as they are: numbered in one go
                yield list(zip(range(first, first + len(block)), *zip(*block, strict=True), repeat(0),
                               strict=False))
            else:
                yield block

    def rest_columns(self, after: int = 0, batch: int = 10_000) -> Iterator[RestColumns]:
        """What ``rest`` gives, a column at a time: (first row number, identifierNames, identifierValues,
        labels) of consecutive rows; for a pass over a whole file that needs only those (repeats.py), at
        no cost per row beyond the csv module's."""
        if self._book is not None:
            for rows in self.rest(after, batch):
                numbers, names, values, labels, _, _ = zip(*rows, strict=True)
                yield numbers[0], names, values, labels
            return
        for first, block in self._rest(after, batch):
            if first:
                names, values, labels, _ = zip(*block, strict=True)
                yield first, names, values, labels
            elif block:
                numbers, names, values, labels, _, _ = zip(*block, strict=True)
                yield numbers[0], names, values, labels

    def _rest(self, after: int, batch: int) -> Iterator[tuple[int, Any]]:
        """``rest``'s rows as (0, rows), or as (first number, block) for a block whose cells are the rows'
        values as they are (four a row, none empty or needing normalise())."""
        self._binary.seek(0)
        text = io.TextIOWrapper(self._binary, encoding=self.encoding, newline="")
        at = [self._index.get(c) for c in (*COLUMNS, SOURCE_COLUMN)]
        width = 1 + max(i for i in at if i is not None)
        positions = [i if i is not None else width for i in at]  # an absent column reads the padding ""
        name_default = self.options.default_name or ""
        label_default = self.options.default_label or ""
        reason_default = self.options.default_reason or ""
        edge, trim = EDGE_CHARS, TRIM_CHARS
        plain = positions == [0, 1, 2, 3, width]  # the four columns alone, in order
        number = 0
        header = True
        try:
            cells_read = csv.reader(text, delimiter=self.delimiter, quotechar='"')
            while block := list(islice(cells_read, batch)):
                if plain and not header and _as_they_are(block):
                    # Every row four cells, none empty or needing normalise(): numbered in one go.
                    first, number = number + 1, number + len(block)
                    if number > after:
                        skip = max(0, after + 1 - first)
                        yield first + skip, block[skip:] if skip else block
                    continue
                rows: list[RestRow] = []
                for cells in block:
                    first_cell = cells[0] if cells else ""
                    if not (first_cell and first_cell[0] not in trim) and not "".join(cells).strip(trim):
                        continue  # blank: not a row, as when iterating
                    if header:
                        header = False
                        continue
                    number += 1
                    if number <= after:
                        continue
                    if plain and len(cells) == 4:
                        name, value, label, reason = cells
                        source = ""
                    else:
                        if len(cells) <= width:
                            cells += [""] * (width + 1 - len(cells))
                        name, value, label, reason, source = (cells[i] for i in positions)
                    if not (name and value and label and reason) or (
                            name[0] in edge or value[0] in edge or label[0] in edge or reason[0] in edge
                            or name[-1] in trim or value[-1] in trim or label[-1] in trim or reason[-1] in trim):
                        name, value, label, reason = (normalise(v) for v in (name, value, label, reason))
                    origin = source_row(source)[0] if source else 0
                    rows.append((number, name or name_default, value, label or label_default,
                                 reason or reason_default, origin))
                if rows:
                    yield 0, rows
        except UnicodeDecodeError:
            raise decode_error(self.path, self.encoding) from None
        except csv.Error:
            raise csv_error(self.path, self.encoding, self.delimiter) from None
        finally:
            # (also when the generator is collected after a second Ctrl-C closed the file under it)
            with contextlib.suppress(ValueError):
                text.detach()

    def fileno(self) -> int:
        """The open file's descriptor (to tell whether the file changed under the reader)."""
        return self._binary.fileno()

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


_SEP = "\x1f"


def _as_they_are(block: list[list[str]]) -> bool:
    """Whether every row of ``block`` has four cells, none empty, none starting with a character that
    normalise() looks at nor ending with one it trims: then the cells are what check_row would give.
    Looked at as one string (C-speed scans, a few per block); a cell holding the separator may only
    make this False where it is not (the rows then go one by one)."""
    if set(map(len, block)) != {4}:
        return False
    joined = _SEP.join(map(_SEP.join, block))
    if _SEP * 2 in joined or joined.startswith(_SEP) or joined.endswith(_SEP):
        return False
    starts = any(char in joined and (_SEP + char in joined or joined.startswith(char)) for char in EDGE_CHARS)
    return not starts and not any(char in joined and (char + _SEP in joined or joined.endswith(char))
                                  for char in TRIM_CHARS)
