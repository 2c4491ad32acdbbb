"""Whole-file passes over an input file, before any row is read: its size and its structure."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import numpy as np

from bulkstatus.locate import csv_error, decode_error
from bulkstatus.sniff import DEFAULT_OPTIONS, ReadOptions, open_input

__all__ = ["check_structure", "count_data_rows"]


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


def check_structure(path: str | Path, options: ReadOptions = DEFAULT_OPTIONS) -> None:
    """Raise InputFileError for any problem that would stop reading midway (header, undecodable
    bytes, a broken quote), without checking rows: one C-speed pass.

    InputReader checks a file up to SAMPLE_BYTES whole on opening; for a longer one, a run calls this
    before sending anything so that a file broken far down sends nothing either. The file is decoded
    and its quotes and field lengths checked with numpy (``_quotes_well_formed``, about 0.2 s per million
    rows, so a run starts sending at once); only a file that check cannot vouch for (a quote in the middle
    of an unquoted value, a value near csv's length limit, an encoding such as UTF-16) is parsed whole
    by csv (about a second per million rows), which also says where the problem is."""
    file = Path(path)
    binary, layout = open_input(file, options)
    with binary:
        if _quotes_well_formed(file, layout.encoding, layout.delimiter):
            return
        if _decodes_without_quotes(file, layout.encoding):
            return
        with open(file, encoding=layout.encoding, newline="") as f:
            try:
                for _ in csv.reader(f, delimiter=layout.delimiter, strict=True):
                    pass
            except UnicodeDecodeError:
                raise decode_error(file, layout.encoding) from None
            except csv.Error:
                raise csv_error(file, layout.encoding, layout.delimiter) from None


# Encodings in which every byte below 0x80 is that ASCII character and never part of another one, so
# quotes, delimiters and line breaks can be found in the raw bytes.
_ASCII_SAFE = frozenset({"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252"})
_QUOTE, _LF, _CR = 34, 10, 13
_BLOCK = 1 << 22  # bytes read at a time by _quotes_well_formed


def _quotes_well_formed(path: Path, encoding: str, delimiter: str) -> bool:
    """True when the whole file decodes and strict csv will read all of it; False when unsure.

    The quote characters are numbered through the file: an odd one must open a value (right after a
    delimiter, a line break, the file's start or an even one), an even one must close it (right before
    a delimiter, a line break, the file's end or an odd one: that pair is an escaped quote). Those are
    RFC 4180 quotes, which strict csv reads; an odd count at the end is a value never closed. A value
    lies between two delimiters or line breaks outside quotes (outside: an even number of quotes before
    them), so their largest distance in bytes bounds every value's length in characters. Anything
    outside these rules (a NUL, a stray quote inside a plain value, which csv takes as text) returns
    False and the caller's csv pass decides."""
    if codecs.lookup(encoding).name not in _ASCII_SAFE or len(delimiter) != 1 or ord(delimiter) > 127:
        return False
    limit = csv.field_size_limit()
    allowed = np.zeros(256, dtype=bool)  # the bytes that may stand next to a quote on its outer side
    allowed[[ord(delimiter), _LF, _CR, _QUOTE]] = True
    delim = ord(delimiter)
    decoder = codecs.getincrementaldecoder(encoding)()
    parity = 0  # quotes seen before the block, modulo 2
    before = _LF  # the byte before the block (the file's start counts as a line break)
    close_at_end = False  # the previous block ended with a closing quote: its next byte is this block's first
    offset = 0  # the file position of the block's first byte
    last_boundary = -1  # the file position of the last delimiter or line break outside quotes
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                raise decode_error(path, encoding) from None
            data = np.frombuffer(block, dtype=np.uint8)
            if not data.all():
                return False  # a NUL byte
            if close_at_end and not allowed[data[0]]:
                return False
            quotes = np.flatnonzero(data == _QUOTE)
            if quotes.size:
                odd = ((np.arange(quotes.size) + parity) & 1) == 0  # opening quotes
                opens, closes = quotes[odd], quotes[~odd]
                previous = np.where(opens > 0, data[opens - 1], before)
                closes_inside = closes[closes + 1 < data.size]
                if not (allowed[previous].all() and allowed[data[closes_inside + 1]].all()):
                    return False
                close_at_end = bool(closes.size) and int(closes[-1]) == data.size - 1
            else:
                close_at_end = False
            boundary = (data == delim) | (data == _LF) | (data == _CR)
            if quotes.size or parity:
                boundaries = np.flatnonzero(boundary)
                outside = boundaries[((np.searchsorted(quotes, boundaries) + parity) & 1) == 0] + offset
                widest = _widest_gap(outside, last_boundary)
            else:  # no quote in the block and none open: every delimiter and line break is a boundary
                outside, widest = _plain_boundaries(boundary, offset, last_boundary, limit)
            if widest >= limit:
                return False
            if outside.size:
                last_boundary = int(outside[-1])
            parity = (parity + quotes.size) & 1
            before = int(data[-1])
            offset += data.size
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise decode_error(path, encoding) from None
    return parity == 0 and offset - last_boundary < limit


def _widest_gap(outside: np.ndarray, last_boundary: int) -> int:
    """The largest distance between consecutive boundaries, the first measured from ``last_boundary``."""
    if not outside.size:
        return 0
    widest = int(outside[0]) - last_boundary
    if outside.size > 1:
        widest = max(widest, int(np.diff(outside).max()))
    return widest


def _plain_boundaries(boundary: np.ndarray, offset: int, last_boundary: int,
                      limit: int) -> tuple[np.ndarray, int]:
    """(first and last boundary of the block, a bound on the widest gap) without listing every boundary.

    A gap of ``limit`` bytes or more would hold a whole aligned window of ``limit // 2`` bytes with no
    boundary in it; if every such window has one, the widest gap inside the block is under ``limit``.
    """
    if not boundary.any():
        return np.empty(0, dtype=np.intp), 0  # the gap goes on into the next block (or to the end)
    first = int(np.argmax(boundary))
    last = boundary.size - 1 - int(np.argmax(boundary[::-1]))
    half = max(1, limit // 2)
    whole = boundary.size // half * half
    windows_ok = bool(boundary[:whole].reshape(-1, half).any(axis=1).all()) if whole else True
    widest = max(first + offset - last_boundary, 0 if windows_ok else limit)
    return np.array([first + offset, last + offset], dtype=np.intp), widest


def _decodes_without_quotes(path: Path, encoding: str) -> bool:
    """True when the whole file decodes, holds no quote character and no line near csv's field limit.

    Strict csv can then fail on nothing: its errors are about quotes (a quoted value never closed, text
    after a closing quote) and about fields longer than the limit. Lines are bounded cheaply: every
    whole quarter-limit piece of each decoded block must hold a line break, so no run of characters
    without one reaches three quarters of the limit. False as soon as a quote (or a long line) shows up:
    the caller's csv pass then checks everything, decoding included."""
    quarter = max(1, csv.field_size_limit() // 4)
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                raise decode_error(path, encoding) from None
            if '"' in text:
                return False
            for start in range(0, len(text) - quarter + 1, quarter):
                end = start + quarter
                if text.find("\n", start, end) < 0 and text.find("\r", start, end) < 0:
                    return False
            if not block:
                return True
