"""What an input file is, from its first SAMPLE_BYTES: encoding, delimiter and header.

`open_input` decides everything that can be decided before any row is read, and raises InputFileError
(one line: what is wrong and the fix) for a file that cannot be read at all: not a CSV file, not
decodable, no header or a header column missing or misspelt, no data rows. A file that fits in the
sample is also parsed whole, so that a broken quote in it stops a run before anything is sent.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bulkstatus.input import rules
from bulkstatus.input.columns import COLUMNS, SOURCE_COLUMN
from bulkstatus.input.columns import header_alias as _alias
from bulkstatus.input.columns import match_header as _match_columns
from bulkstatus.input.locate import csv_error, decode_error, file_error

__all__ = ["COLUMNS", "DEFAULT_OPTIONS", "DELIMITERS", "SAMPLE_BYTES", "SOURCE_COLUMN", "Layout", "ReadOptions",
           "match_header", "open_input"]

DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t"}
SAMPLE_BYTES = 64 * 1024  # what the header, encoding and delimiter are detected from
_BY_ALIAS = {c.lower(): c for c in (*COLUMNS, SOURCE_COLUMN)}
_MAGIC = {
    # (.xlsx, .ods and .xls workbooks are read by bulkstatus.input.workbook before a file gets here)
    b"PK\x03\x04": "is a zip archive, but not an .xlsx or .ods workbook nor a CSV file; if it holds a CSV "
                   "file, unzip it first",
    b"\xd0\xcf\x11\xe0": "is a Microsoft Office file that is not an Excel workbook (.xls); give a CSV file, "
                         "or an .xlsx, .xls or .ods workbook",
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
    columns: tuple[tuple[str, str], ...] = ()  # (field, header) of --column / [columns]
    default_name: str | None = None  # --identifier-name: for an empty cell or an absent column
    sheet: str | None = None  # a workbook's sheet to read; None: the first


DEFAULT_OPTIONS = ReadOptions()  # the default argument of InputReader and check_structure


@dataclass(frozen=True, slots=True)
class Layout:
    """What the start of a file says about all of it."""

    encoding: str  # a codecs name; utf-8-sig when the file starts with a UTF-8 BOM
    delimiter: str
    columns: list[str]  # the header's cells, as written
    index: dict[str, int]  # position in `columns` of each of COLUMNS (and SOURCE_COLUMN) present
    # Cells up to the last non-empty header name: a header ending in empty names (a trailing
    # delimiter) does not make rows without those cells too short.
    named: int


def open_input(path: Path, options: ReadOptions) -> tuple[BinaryIO, Layout]:
    """The file, opened in binary at an unspecified position, and its layout; raises InputFileError."""
    binary = _open(path)
    try:
        sample = binary.read(SAMPLE_BYTES)
        return binary, _sniff(path, sample, len(sample) < SAMPLE_BYTES, options)
    except BaseException:
        binary.close()
        raise


def _open(path: Path) -> BinaryIO:
    try:
        binary = open(path, "rb")  # noqa: SIM115 - returned open
    except FileNotFoundError:
        raise file_error(path, "no such file; check the path") from None
    except IsADirectoryError:
        raise file_error(path, "is a directory, not a CSV file") from None
    except OSError as e:
        raise file_error(path, f"cannot be opened ({e.strerror}); check its permissions") from None
    return binary


def _sniff(path: Path, sample: bytes, at_eof: bool, options: ReadOptions) -> Layout:
    """The layout of a file whose first bytes are `sample` (the whole file if `at_eof`)."""
    encoding = _choose_encoding(path, sample, options.encoding)
    text = _decode_sample(path, sample, encoding, at_eof)
    delimiter, columns, has_data = _find_header(path, text, encoding, options.delimiter, at_eof)
    index = _match_header(path, columns, options)
    named = max(i for i, c in enumerate(columns) if c.strip(rules.TRIM_CHARS)) + 1
    if at_eof and not has_data:
        raise file_error(path, "has a header but no data rows; add one row per customer below it")
    return Layout(encoding, delimiter, columns, index, named)


def _choose_encoding(path: Path, sample: bytes, given: str | None) -> str:
    if not sample:
        raise file_error(path, "is empty; it needs a header line identifierName,identifierValue,label,reason "
                               "and one row per customer")
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise file_error(path, what)
    bom = "utf-16" if sample[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None
    if sample.startswith(codecs.BOM_UTF8):
        bom = "utf-8-sig"
    if given is None:
        return bom or "utf-8"
    try:
        name = codecs.lookup(given).name
    except LookupError:
        raise file_error(path, f'unknown encoding "{given}"; use utf-8, utf-16, cp1252 or latin-1') from None
    # `--encoding utf-8` on a file saved with a BOM: the BOM is not part of the first column name.
    return "utf-8-sig" if name == "utf-8" and bom == "utf-8-sig" else name


def _decode_sample(path: Path, sample: bytes, encoding: str, at_eof: bool) -> str:
    # NUL bytes: UTF-16 without a BOM (every other byte) or not text at all. Checked before
    # decoding because such a file would otherwise be reported as having undecodable bytes.
    wide = encoding.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in sample:
        head = sample[:4096]
        if max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 4:
            raise file_error(path, "looks like UTF-16 without a byte-order mark; save it as CSV UTF-8, or "
                                   "pass --encoding utf-16-le (or utf-16-be)")
        raise file_error(path, "is not a text file (it contains NUL bytes); save the sheet as CSV UTF-8")
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(sample, final=at_eof)
    except UnicodeDecodeError:
        raise decode_error(path, encoding) from None
    if "\x00" in text:
        raise file_error(path, "is not a text file (it contains NUL characters); save the sheet as CSV UTF-8")
    return text


def _find_header(path: Path, text: str, encoding: str, given: str | None,
                 at_eof: bool) -> tuple[str, list[str], bool]:
    """Delimiter, header cells, and whether a data row follows the header in `text`."""
    forced = given
    if forced is not None:
        forced = _DELIMITER_NAMES.get(forced.lower(), forced)
        if len(forced) != 1 or forced in '"\r\n':
            raise file_error(path, f'--delimiter must be one character such as , ; or tab, not "{forced}"')
    best: tuple[int, int, str, list[str], bool, bool] | None = None
    for delimiter in (forced,) if forced else DELIMITERS:
        header, has_data, broken = _first_records(text, delimiter)
        if header is None:
            continue
        matched = sum(_alias(cell) in _BY_ALIAS for cell in header)
        if best is None or (matched, len(header)) > best[:2]:
            best = (matched, len(header), delimiter, header, has_data, broken)
    if best is None:
        if text.strip(rules.TRIM_CHARS + "\r\n"):
            raise csv_error(path, encoding, forced or ",")
        raise file_error(path, "contains only blank lines; it needs a header line "
                               "identifierName,identifierValue,label,reason and one row per customer")
    # A file that fits in the sample is parsed whole now, so that a broken quote stops it before
    # anything is sent. In a longer sample the last record may be cut, so errors wait for reading.
    if at_eof and (best[5] or _first_records(text, best[2], whole=True)[2]):
        raise csv_error(path, encoding, best[2])
    return best[2], best[3], best[4]


def _first_records(text: str, delimiter: str, whole: bool = False) -> tuple[list[str] | None, bool, bool]:
    """The first non-blank record of `text` (the header), whether another follows, and whether
    parsing stopped at an error (looking at all of `text` if `whole`)."""
    header: list[str] | None = None
    has_data = False
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True):
            if not any(cell.strip(rules.TRIM_CHARS) for cell in record):
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


def _match_header(path: Path, columns: list[str], options: ReadOptions) -> dict[str, int]:
    """Position of each known column; raises naming every one missing, repeated or misspelt."""
    defaults = {"identifierName": options.default_name, "label": options.default_label,
                "reason": options.default_reason}
    return _match_columns(path, columns, dict(options.columns), defaults)


match_header = _match_header  # for the workbook reader, which finds its header cells itself
