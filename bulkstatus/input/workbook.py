"""An .xlsx, .ods or .xls input: its header found and matched as a CSV file's is, its rows checked.

`open_workbook` returns None for a file that is not a workbook (the CSV reader takes it); otherwise a
Workbook, which InputReader uses in place of its CSV parsing: `checked` gives the CheckedRow lists that
iterating gives, `rest` the rows of a stopped run's rest (read again from the top and checked: slower than
the CSV path's, and the same rows). `check` reads the whole sheet without looking at cells (C speed), so a
workbook broken far down sends nothing either, and `count_rows` gives the progress total.

A workbook's rows are numbered as a CSV file's: 1, 2, ... after the header, blank rows not counted (a
sheet's row number is then row number + 1 + the blank rows above). Cells right of the header's last
column are ignored when empty; a value there makes the row invalid, as an extra cell does in a CSV file.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Generator, Iterator
from itertools import islice
from pathlib import Path
from typing import IO
from xml.parsers import expat

from bulkstatus.errors import InputFileError
from bulkstatus.input.locate import file_error
from bulkstatus.input.rules import (
    TRIM_CHARS,
    CheckedRow,
    RowRules,
    check_row,
    mark_stored_as_number,
)
from bulkstatus.input.sheets import KINDS, SheetRow, sheet_kind, sheet_rows, xlsx_sheet_member
from bulkstatus.input.sniff import COLUMNS, SOURCE_COLUMN, Layout, ReadOptions, match_header

__all__ = ["Workbook", "count_rows", "open_workbook"]

FIRST_CHUNK_ROWS = 1_000
_HEAD = 4096


def _kind(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return None  # the CSV reader's opening says what is wrong with the path
    return sheet_kind(path, head)


def open_workbook(path: Path, options: ReadOptions) -> Workbook | None:
    """The workbook at ``path`` opened and its header matched, or None when it is not a workbook."""
    kind = _kind(path)
    if kind is None:
        if options.sheet:
            raise file_error(path, f'--sheet "{options.sheet}" is for workbooks (.xlsx, .xls, .ods), and this '
                                   "is not one; leave --sheet out")
        return None
    return Workbook(path, kind, options)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _blank(cells: list[str]) -> bool:
    return not any(c.strip(TRIM_CHARS) for c in cells)


class Workbook:
    """One sheet of a workbook, open; ``layout`` as sniff gives a CSV file's (encoding: the kind)."""

    def __init__(self, path: Path, kind: str, options: ReadOptions) -> None:
        self.path = path
        self.kind = kind
        self.options = options
        self.skipped_empty_rows = 0
        self.binary: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            named: list[str] = []
            self.header, has_data = self._head(named)
            self.sheet = named[0] if named else (options.sheet or "")
            index = match_header(path, self.header, options)
            if not has_data:
                raise file_error(path, f'sheet "{self.sheet}" has a header but no data rows; add one row per '
                                       "customer below it")
        except BaseException:
            self.binary.close()
            raise
        self.layout = Layout(kind, "", self.header, index, len(self.header))
        self.description = f'{KINDS[kind]}, sheet "{self.sheet}"'

    def _rows(self, named: list[str] | None = None) -> Generator[SheetRow, None, None]:
        return sheet_rows(self.path, self.kind, self.binary, self.options.sheet, named)

    def _head(self, named: list[str]) -> tuple[list[str], bool]:
        rows = self._rows(named)
        try:
            for cells, _ in rows:
                if not _blank(cells):
                    return list(cells), any(not _blank(c) for c, _ in rows)
        finally:
            rows.close()
        where = f'sheet "{named[0]}"' if named else "its first sheet"
        raise file_error(self.path, f"{where} is empty; it needs a header row identifierName, identifierValue, "
                                    "label, reason and one row per customer (pass --sheet NAME for another sheet)")

    def checked(self, rules: RowRules, chunk_rows: int) -> Iterator[list[CheckedRow]]:
        """The data rows, checked, in lists of ``chunk_rows`` (the first of FIRST_CHUNK_ROWS)."""
        self.skipped_empty_rows = 0
        rows = self._checked_rows(rules)
        size = min(FIRST_CHUNK_ROWS, max(1, chunk_rows))
        while chunk := list(islice(rows, size)):
            yield chunk
            size = max(1, chunk_rows)

    def _checked_rows(self, rules: RowRules) -> Iterator[CheckedRow]:
        index = self.layout.index
        width = len(self.header)
        at = [index.get(c) for c in (*COLUMNS, SOURCE_COLUMN)]
        value_bit = 1 << index["identifierValue"] if "identifierValue" in index else 0
        number = 0
        header = True
        for cells, numeric in self._rows():
            if _blank(cells):
                if not header:
                    self.skipped_empty_rows += 1
                continue
            if header:
                header = False
                continue
            number += 1
            shape = None
            if len(cells) > width:
                extra = next(i for i in range(width, len(cells)) if cells[i].strip(TRIM_CHARS)) \
                    if any(c.strip(TRIM_CHARS) for c in cells[width:]) else None
                if extra is not None:
                    shape = ("too-many-cells", f"row has a value in column {_column_letter(extra)}, right of the "
                             f"header's last column ({_column_letter(width - 1)}); delete it, or give its column "
                             "a header (columns other than identifierName, identifierValue, label, reason and "
                             "sourceRow are ignored)")
            elif len(cells) < width:
                cells += [""] * (width - len(cells))
            name, value, label, reason, source = (cells[i] if i is not None else None for i in at)
            checked = check_row(number, name or "", value or "", label, reason, rules, shape, source)
            if numeric & value_bit and value and shape is None:
                mark_stored_as_number(checked)
            yield checked

    def rest(self, after: int, rules: RowRules, batch: int) -> Iterator[list[tuple[int, str, str, str, str, int]]]:
        """The rows numbered after ``after`` as (number, name, value, label, reason, origin), like
        InputReader.rest: read again from the top (checked too, the slow way; the cells are the same)."""
        out: list[tuple[int, str, str, str, str, int]] = []
        for checked in self._checked_rows(rules):
            row = checked.row
            if row.number <= after:
                continue
            out.append((row.number, row.identifier_name, row.identifier_value, row.label, row.reason, row.origin))
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out

    def check(self) -> None:
        """Read every row of the sheet, without looking at it; raises InputFileError where it breaks."""
        if self.kind == "xls":
            for _ in self._rows():  # read whole on opening anyway (at most 65,536 rows)
                pass
            return
        try:
            self.binary.seek(0)
            with zipfile.ZipFile(self.binary) as z:
                for member in _members(z, self.kind):
                    parser = expat.ParserCreate()
                    with z.open(member) as stream:
                        while block := stream.read(1 << 20):
                            parser.Parse(block, False)
                    parser.Parse(b"", True)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise file_error(self.path, f"cannot be read as an {KINDS[self.kind]} ({exc}); open it in its "
                                        "spreadsheet program and save it again") from None
        except expat.ExpatError as exc:
            raise file_error(self.path, f"cannot be read as an {KINDS[self.kind]} (XML error: {exc}); open it in "
                                        "its spreadsheet program and save it again") from None

    def close(self) -> None:
        self.binary.close()


def _members(z: zipfile.ZipFile, kind: str) -> list[str]:
    """The members a sheet's rows come from: every worksheet and the shared strings, or content.xml."""
    if kind == "ods":
        return ["content.xml"]
    return [m for m in z.namelist() if (m.startswith("xl/worksheets/") and m.endswith(".xml"))
            or m == "xl/sharedStrings.xml"]


_ROW_END = {"xlsx": re.compile(rb"</(?:\w{1,16}:)?row>"), "ods": re.compile(rb"</table:table-row>")}
_OVERLAP = 32  # longer than any match: one cut by a block's end is found in the next, and counted once


def count_rows(path: Path, sheet: str | None) -> int | None:
    """Approximate data rows of a workbook for a progress total (row end tags, less the header's); None
    for a file that is not a workbook. For an .ods, the rows of every sheet are counted."""
    kind = _kind(path)
    if kind is None:
        return None
    try:
        if kind == "xls":
            with open(path, "rb") as binary:
                return max(0, sum(1 for _ in sheet_rows(path, kind, binary, sheet)) - 1)
        pattern = _ROW_END[kind]
        with zipfile.ZipFile(path) as z:
            member = "content.xml" if kind == "ods" else xlsx_sheet_member(path, z, sheet)
            count, tail = 0, b""
            with z.open(member) as stream:
                while block := stream.read(1 << 20):
                    data = tail + block
                    count += sum(1 for m in pattern.finditer(data) if m.end() > len(tail))
                    tail = data[-_OVERLAP:]
        return max(0, count - 1)
    except (InputFileError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError):
        return None
