"""Errors found anywhere in an input file, located by a second, cheap pass over it.

Reading stops at the first bytes that do not decode or the first record csv cannot parse, without
saying where; these read the file again to name the line and the likely fix."""

from __future__ import annotations

import codecs
import csv
import os
import stat
from pathlib import Path

from bulkstatus.errors import InputFileError

__all__ = ["check_regular_file", "csv_error", "decode_error", "file_error"]


def file_error(path: Path, what: str) -> InputFileError:
    """An error about the input file: its path, then what is wrong with it and the fix."""
    return InputFileError(f"{path}: {what}")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: Path, fix: str = "give a CSV file") -> None:
    """Refuse an input that is not a regular file, by os.stat alone: opening a FIFO blocks and reading
    /dev/zero never ends, so this must come before anything opens the path."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputFileError(f"input file {str(path)!r} does not exist: check the path") from None
    except OSError as exc:
        raise InputFileError(f"cannot examine {str(path)!r} ({exc.strerror}): check the path") from None
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "a special file")
        raise InputFileError(f"{path} is {kind}, not a file: {fix}")


def decode_error(path: Path, encoding: str) -> InputFileError:
    """The first line with bytes that are not valid `encoding`, and what to pass instead."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                line += _lines(decoder.decode(block, final=not block))
            except UnicodeDecodeError as e:
                line += _lines(e.object[: e.start].decode(encoding, errors="replace"))
                bad = e.object[e.start : e.end].hex(" ")
                break
            if not block:
                return file_error(path, f"cannot be decoded as {encoding}; pass --encoding")
    fix = "--encoding latin-1" if encoding == "cp1252" else "--encoding cp1252 (Windows-1252)"
    return file_error(path, f"line {line} has bytes that are not valid {encoding} ({bad}); if the file "
                            f"was saved by Excel on Windows, run again with {fix}, or save it as CSV UTF-8")


def csv_error(path: Path, encoding: str, delimiter: str) -> InputFileError:
    """The line where strict csv first fails, and what is wrong with its quotes."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        records = csv.reader(f, delimiter=delimiter, strict=True)
        start = 1
        try:
            for _ in records:
                start = records.line_num + 1
        except csv.Error as e:
            reason = str(e)
        else:
            return file_error(path, "cannot be parsed as CSV; check its quotes")
    escaped = _backslash_quote(path, encoding, start, records.line_num)
    if escaped:
        what = (f'line {escaped} escapes a quote with a backslash (\\"), which CSV does not do: a quote inside a '
                'quoted value is doubled (""); export again with doubled quotes (pandas: to_csv without '
                "doublequote=False or escapechar; MySQL: FIELDS ESCAPED BY ''; psql: \\copy ... CSV)")
    elif "end of data" in reason:
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
    return file_error(path, what)


def _backslash_quote(path: Path, encoding: str, start: int, end: int) -> int | None:
    """The first line from ``start`` (at most 20 lines on, and not past ``end`` when that is later) holding a
    backslash before a quote inside a quoted value: the sign of an exporter that escapes quotes as \\"."""
    last = min(max(end, start), start + 20)
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        for number, line in enumerate(f, 1):
            if number > last:
                break
            if number >= start and '\\"' in line:
                return number
    return None


def _lines(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")
