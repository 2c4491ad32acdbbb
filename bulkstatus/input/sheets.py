"""The rows of one sheet of an .xlsx, .ods or .xls workbook, as the text of each cell, streamed.

Each row comes as (cells, numeric): the cells as strings, trailing empty cells left out, and a bit mask
of the cells that were stored as numbers (bit i for cell i; 0 for nearly every row).

.xlsx and .ods are zip archives of XML; their sheets are parsed here with expat (the C parser in the
standard library), fed 64 KiB at a time, so that memory stays flat however long the sheet is. An .xlsx
keeps most text in one shared-strings table, which must be held while the sheet is read: it is held as
one string and an array of offsets (about 30 bytes a cell for a million unique ids, where a list of
Python strings takes 80). .xls (BIFF, at most 65,536 rows) is read whole by python-calamine. Why not
calamine, openpyxl or odfpy for all three: benchmarks/workbooks.py and README "Dependencies, and why".

A cell's text is what the sheet holds as text: a text cell exactly as typed (``007123`` stays ``007123``);
an .ods cell the text LibreOffice shows (it is stored with the value); an .xlsx number is written in full
digits (``919853464010``, never ``9.19853E+11``), zero-padded when its format is a run of zeros (``000000``).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from collections.abc import Callable, Generator, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any
from xml.parsers import expat

from bulkstatus.errors import InputFileError

__all__ = ["KINDS", "SheetRow", "sheet_kind", "sheet_rows", "xlsx_sheet_member"]

SheetRow = tuple[list[str], int]
KINDS = {"xlsx": "Excel workbook (.xlsx)", "ods": "OpenDocument spreadsheet (.ods)",
         "xls": "Excel 97-2003 workbook (.xls)"}
_FEED = 64 * 1024
_SEP = "\x01"  # expat's namespace separator: names arrive as "uri\x01local"
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
_BY_SUFFIX = {".xlsx": "xlsx", ".xlsm": "xlsx", ".ods": "ods"}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sheet_kind(path: Path, head: bytes) -> str | None:
    """"xlsx", "ods" or "xls" when the file starting with ``head`` is such a workbook, else None."""
    if head.startswith(_OLE2):
        return "xls"
    if not head.startswith(b"PK\x03\x04"):
        return None
    # An .ods starts with its uncompressed "mimetype" member, by the standard; an .xlsx has xl/workbook.xml.
    if head[30:38] == b"mimetype" and head[38:38 + len(_ODS_MIME)] == _ODS_MIME:
        return "ods"
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "content.xml" in names and "mimetype" in names and z.read("mimetype").startswith(_ODS_MIME):
                return "ods"
    except (zipfile.BadZipFile, OSError):
        # A damaged zip (a download cut short): named by its extension, so that the error says what it is.
        return _BY_SUFFIX.get(path.suffix.lower())
    return None


def sheet_rows(path: Path, kind: str, binary: IO[bytes], sheet: str | None,
               named: list[str] | None = None) -> Generator[SheetRow, None, None]:
    """The rows of ``sheet`` (the first sheet when None) of the workbook open as ``binary``, from the top;
    raises InputFileError when the workbook or the sheet cannot be read. The name of the sheet read is
    appended to ``named`` once it is known (before its first row)."""
    named = [] if named is None else named
    try:
        if kind == "xls":
            yield from _xls_rows(path, binary, sheet, named)
            return
        binary.seek(0)
        with zipfile.ZipFile(binary) as z:
            yield from (_xlsx_rows(path, z, sheet, named) if kind == "xlsx" else _ods_rows(path, z, sheet, named))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _broken(path, kind, f"its zip archive is damaged or cut short: {exc}") from None
    except KeyError as exc:
        raise _broken(path, kind, f"a part is missing: {exc}") from None
    except expat.ExpatError as exc:
        raise _broken(path, kind, f"XML error: {expat.errors.messages.get(exc.code, exc)}") from None


def _broken(path: Path, kind: str, detail: str) -> InputFileError:
    return InputFileError(f"{path}: cannot be read as an {KINDS[kind]} ({detail}); open it in its spreadsheet "
                          "program and save it again, or save the sheet as CSV UTF-8")


def sheet_names_error(path: Path, sheet: str, names: list[str]) -> InputFileError:
    listed = ", ".join(f'"{n}"' for n in names)
    return InputFileError(f'{path}: has no sheet named "{sheet}"; its sheets are {listed}: pass --sheet with one '
                          "of them (or leave --sheet out for the first)")


def _parse(stream: IO[bytes], start: Callable[[str, dict[str, str]], None], end: Callable[[str], None],
           text: Callable[[str], None], out: list[SheetRow]) -> Iterator[SheetRow]:
    """Feed ``stream`` to an expat parser with these handlers, yielding what they put in ``out``."""
    parser = expat.ParserCreate(namespace_separator=_SEP)
    parser.buffer_text = True
    parser.buffer_size = _FEED
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    while block := stream.read(_FEED):
        parser.Parse(block, False)
        if out:
            yield from out
            out.clear()
    parser.Parse(b"", True)
    yield from out
    out.clear()


def _read_xml(data: bytes, start: Callable[[str, dict[str, str]], None],
              end: Callable[[str], None] | None = None, text: Callable[[str], None] | None = None) -> None:
    parser = expat.ParserCreate(namespace_separator=_SEP)
    parser.buffer_text = True
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    parser.Parse(data, True)


def _local(name: str) -> str:
    return name[name.rfind(_SEP) + 1:]


def _attr(attrs: dict[str, str], local: str) -> str | None:
    for key, value in attrs.items():
        if key == local or key.endswith(_SEP + local):
            return value
    return None


# --- .xlsx -----------------------------------------------------------------------------------------


class _SharedStrings:
    """The shared-strings table: every string, UTF-8, in one bytearray, and where each ends (4 bytes each).

    A million unique ids take about 30 MB so, where a list of str takes 80 and one str with offsets twice
    its size while it is built (and four bytes a character once one CJK character is in it)."""

    __slots__ = ("_data", "_ends")

    def __init__(self, z: zipfile.ZipFile, member: str | None) -> None:
        self._ends = array("I")
        self._data = bytearray()
        if member is None:
            return
        parts: list[str] = []
        depth = {"si": 0, "t": 0, "rPh": 0}
        data = self._data

        def start(name: str, attrs: dict[str, str]) -> None:
            local = _local(name)
            if local in depth:
                depth[local] += 1

        def end(name: str) -> None:
            local = _local(name)
            if local in depth:
                depth[local] -= 1
            if local == "si":
                data.extend("".join(parts).encode("utf-8", "surrogatepass"))
                parts.clear()
                if len(data) > 0xFFFFFFFF and self._ends.typecode == "I":
                    self._ends = array("Q", self._ends)
                self._ends.append(len(data))

        def text(chunk: str) -> None:
            if depth["t"] and not depth["rPh"]:  # phonetic runs (rPh) are a reading aid, not the text
                parts.append(chunk)

        with z.open(member) as stream:
            for _ in _parse(stream, start, end, text, []):
                pass

    def __getitem__(self, index: int) -> str:
        ends = self._ends
        return self._data[ends[index - 1] if index else 0:ends[index]].decode("utf-8", "surrogatepass")

    def __len__(self) -> int:
        return len(self._ends)


_ZEROS = re.compile(r"0+")
# The built-in number formats that are runs of zeros (ECMA-376 18.8.30): 1 is "0".
_BUILTIN_ZEROS = {1: 1}


def _zero_padding(z: zipfile.ZipFile, member: str | None) -> list[int]:
    """For each cell style (the cells' s="..."), the width of its format when that is a run of zeros, else 0."""
    if member is None:
        return []
    codes: dict[int, str] = {}
    styles: list[int] = []
    inside = []

    def start(name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        if local == "numFmt":
            codes[int(_attr(attrs, "numFmtId") or -1)] = _attr(attrs, "formatCode") or ""
        elif local == "cellXfs":
            inside.append(True)
        elif local == "xf" and inside:
            number = int(_attr(attrs, "numFmtId") or 0)
            code = codes.get(number)
            if code is not None:
                styles.append(len(code) if _ZEROS.fullmatch(code.replace('"', "")) else 0)
            else:
                styles.append(_BUILTIN_ZEROS.get(number, 0))

    def end(name: str) -> None:
        if _local(name) == "cellXfs":
            inside.clear()

    _read_xml(z.read(member), start, end)
    return styles


def _number_text(value: str, width: int) -> str:
    """An .xlsx number cell's value in full digits: integers without a decimal point or exponent."""
    try:
        number = float(value)
    except ValueError:
        return value
    text = str(int(number)) if number.is_integer() and abs(number) < 1e21 else repr(number)
    return text.zfill(width) if width else text


def _rels(z: zipfile.ZipFile, member: str) -> dict[str, str]:
    """Relationship id -> member path, from a .rels part."""
    base = PurePosixPath(member).parent.parent
    found: dict[str, str] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        if _local(name) == "Relationship":
            target = attrs.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else str(base / target)
            found[attrs.get("Id", "")] = _normal(path)

    if member in z.namelist():
        _read_xml(z.read(member), start)
    return found


def _normal(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def xlsx_sheet_member(path: Path, z: zipfile.ZipFile, sheet: str | None, named: list[str] | None = None) -> str:
    """The zip member of the named sheet (or the first); its name is appended to ``named``."""
    sheets: list[tuple[str, str]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if _local(name) == "sheet":
            sheets.append((attrs.get("name", ""), _attr(attrs, "id") or ""))

    _read_xml(z.read("xl/workbook.xml"), start)
    rels = _rels(z, "xl/_rels/workbook.xml.rels")
    if not sheets:
        raise _broken(path, "xlsx", "it lists no sheet")
    chosen = sheets[0] if sheet is None else next((s for s in sheets if s[0] == sheet), None)
    if chosen is None:
        raise sheet_names_error(path, sheet or "", [s[0] for s in sheets])
    if named is not None:
        named.append(chosen[0])
    member = rels.get(chosen[1]) or f"xl/worksheets/sheet{sheets.index(chosen) + 1}.xml"
    if member not in z.namelist():
        raise _broken(path, "xlsx", f'its sheet "{chosen[0]}" is missing ({member})')
    return member


def _column(reference: str) -> int:
    """0-based column of a cell reference such as "AB12"."""
    number = 0
    for char in reference:
        if char.isdigit():
            break
        number = number * 26 + (ord(char) & 0x1F)
    return number - 1


def _xlsx_rows(path: Path, z: zipfile.ZipFile, sheet: str | None, named: list[str]) -> Iterator[SheetRow]:
    member = xlsx_sheet_member(path, z, sheet, named)
    names = set(z.namelist())
    rels = _rels(z, "xl/_rels/workbook.xml.rels")
    strings_member = next((m for m in rels.values() if m.endswith("sharedStrings.xml")), None)
    if strings_member not in names:
        strings_member = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else None
    styles_member = next((m for m in rels.values() if m.endswith("styles.xml")), None)
    if styles_member not in names:
        styles_member = "xl/styles.xml" if "xl/styles.xml" in names else None
    strings = _SharedStrings(z, strings_member)
    padding = _zero_padding(z, styles_member)
    out: list[SheetRow] = []
    cells: list[str] = []
    numeric = 0
    kind: str | None = None
    style = 0
    at = 0
    value: list[str] = []
    inline: list[str] = []
    collecting: list[str] | None = None
    phonetic = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal kind, style, at, collecting, phonetic, numeric
        local = name[name.rfind(_SEP) + 1:]
        if local == "c":
            reference = attrs.get("r")
            at = _column(reference) if reference else len(cells)
            kind = attrs.get("t")
            style = int(attrs.get("s", 0))
        elif local == "v":
            collecting = value
        elif local == "t" and not phonetic:
            collecting = inline
        elif local == "rPh":
            phonetic += 1
        elif local == "row":
            cells.clear()
            numeric = 0

    def end(name: str) -> None:
        nonlocal collecting, phonetic, numeric
        local = name[name.rfind(_SEP) + 1:]
        if local in ("v", "t"):
            collecting = None
        elif local == "rPh":
            phonetic -= 1
        elif local == "c":
            raw = "".join(value)
            value.clear()
            if kind == "s":
                text = strings[int(raw)] if raw else ""
            elif kind == "inlineStr":
                text = "".join(inline)
                inline.clear()
            elif kind in ("str", "e", "d"):
                text = raw
            elif kind == "b":
                text = "TRUE" if raw == "1" else "FALSE" if raw else ""
            else:  # "n" or none: a number
                text = _number_text(raw, padding[style] if style < len(padding) else 0) if raw else ""
                if raw:
                    numeric |= 1 << at
            if text:
                if at >= len(cells):
                    cells.extend([""] * (at + 1 - len(cells)))
                cells[at] = text
        elif local == "row":
            out.append((cells.copy(), numeric))

    def text(data: str) -> None:
        if collecting is not None:
            collecting.append(data)

    with z.open(member) as stream:
        yield from _parse(stream, start, end, text, out)


# --- .ods ------------------------------------------------------------------------------------------

_NUMERIC_TYPES = frozenset({"float", "percentage", "currency"})
_MAX_REPEAT = 1 << 20  # a sheet's most rows; repeats past it are the empty rest of a sheet
_MAX_COLUMNS = 1 << 14  # a sheet's most columns
_TABLE, _OFFICE, _TEXT = (f"urn:oasis:names:tc:opendocument:xmlns:{n}:1.0{_SEP}" for n in ("table", "office", "text"))
_TABLE_NAME, _COLUMNS_REPEATED, _ROWS_REPEATED = (_TABLE + n for n in ("name", "number-columns-repeated",
                                                                        "number-rows-repeated"))
_VALUE_TYPE, _VALUE, _SPACES = _OFFICE + "value-type", _OFFICE + "value", _TEXT + "c"


def _ods_rows(path: Path, z: zipfile.ZipFile, sheet: str | None, named: list[str]) -> Iterator[SheetRow]:
    out: list[SheetRow] = []
    tables: list[str] = []
    state: dict[str, Any] = {"in": False, "done": False}
    cells: list[str] = []
    numeric = 0
    empty = 0  # empty cells since the last one with text: padding only if text follows
    row_repeat = 1
    cell_repeat = 1
    cell_numeric = False
    value: str | None = None
    paragraphs: list[str] = []
    parts: list[str] | None = None
    ignored = 0  # depth inside an annotation (a comment) or other text that is not the cell's

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal row_repeat, cell_repeat, cell_numeric, value, parts, ignored, numeric, empty
        local = name[name.rfind(_SEP) + 1:]
        if local == "table":
            tables.append(attrs.get(_TABLE_NAME, ""))
            state["in"] = not state["done"] and (sheet is None or tables[-1] == sheet)
            if state["in"]:
                named.append(tables[-1])
            return
        if not state["in"]:
            return
        if ignored:
            if local in ("annotation", "note"):
                ignored += 1
        elif local in ("table-cell", "covered-table-cell"):
            cell_repeat = int(attrs.get(_COLUMNS_REPEATED, 1))
            cell_numeric = attrs.get(_VALUE_TYPE) in _NUMERIC_TYPES
            value = attrs.get(_VALUE)
            paragraphs.clear()
        elif local == "p" or local == "h":
            parts = []
        elif parts is not None and local == "s":
            parts.append(" " * int(attrs.get(_SPACES, 1)))
        elif parts is not None and local == "tab":
            parts.append("\t")
        elif parts is not None and local == "line-break":
            parts.append("\n")
        elif local in ("annotation", "note"):
            ignored = 1
        elif local == "table-row":
            row_repeat = min(int(attrs.get(_ROWS_REPEATED, 1)), _MAX_REPEAT)
            cells.clear()
            numeric = empty = 0

    def end(name: str) -> None:
        nonlocal parts, ignored, numeric, empty
        local = name[name.rfind(_SEP) + 1:]
        if local == "table":
            if state["in"]:
                state["done"] = True
            state["in"] = False
            return
        if not state["in"]:
            return
        if ignored:
            if local in ("annotation", "note"):
                ignored -= 1
        elif local in ("p", "h") and parts is not None:
            paragraphs.append("".join(parts))
            parts = None
        elif local in ("table-cell", "covered-table-cell"):
            text = "\n".join(paragraphs) if paragraphs else (value or "")
            if not text:  # counted, not stored: a row's trailing empty cells (often 1,000 and more) cost nothing
                empty += cell_repeat
            elif len(cells) + empty < _MAX_COLUMNS:
                cells.extend([""] * empty)
                empty = 0
                repeat = min(cell_repeat, _MAX_COLUMNS - len(cells))
                if cell_numeric:
                    numeric |= ((1 << repeat) - 1) << len(cells)
                cells.extend([text] * repeat)
        elif local == "table-row" and cells:
            row = cells.copy()
            out.extend([(row, numeric)] * row_repeat)
            # (a repeated empty row is many blank rows: skipped all the same, so not expanded)

    def text(data: str) -> None:
        if parts is not None and not ignored:
            parts.append(data)

    with z.open("content.xml") as stream:
        yield from _parse(stream, start, end, text, out)
    if not state["done"]:
        if sheet is not None:
            raise sheet_names_error(path, sheet, tables)
        raise _broken(path, "ods", "it holds no sheet")


# --- .xls ------------------------------------------------------------------------------------------


def _xls_rows(path: Path, binary: IO[bytes], sheet: str | None, named: list[str]) -> Iterator[SheetRow]:
    import python_calamine as calamine

    binary.seek(0)
    try:
        book = calamine.CalamineWorkbook.from_filelike(binary)
        names = book.sheet_names
        if sheet is not None and sheet not in names:
            raise sheet_names_error(path, sheet, names)
        if not names:
            raise _broken(path, "xls", "it holds no sheet")
        named.append(sheet if sheet is not None else names[0])
        rows = book.get_sheet_by_name(named[-1])
        read = rows.to_python(skip_empty_area=False)
    except calamine.CalamineError as exc:
        raise _broken(path, "xls", str(exc).splitlines()[0][:200]) from None
    for values in read:
        cells: list[str] = []
        numeric = 0
        for i, v in enumerate(values):
            if isinstance(v, str):
                cells.append(v)
                continue
            if isinstance(v, bool):
                cells.append("TRUE" if v else "FALSE")
            elif isinstance(v, int | float):
                cells.append(_number_text(repr(float(v)), 0))
                numeric |= 1 << i
            else:  # a date, time or duration
                cells.append(str(v.isoformat()) if hasattr(v, "isoformat") else str(v))
        while cells and not cells[-1]:
            cells.pop()
        yield cells, numeric
