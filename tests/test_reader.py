"""Opening, detection, header matching and streaming of the input file."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from bulkstatus.errors import InputFileError
from bulkstatus.input.reader import InputReader, ReadOptions, count_data_rows

HEADER = "identifierName,identifierValue,label,reason"
ROW = "mobile,+919800000001,Suspended,fraud"


def make(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read_all(path: Path, **options: object) -> list[tuple[int, str, str, str, str]]:
    with InputReader(path, ReadOptions(**options)) as reader:  # type: ignore[arg-type]
        return [(c.row.number, c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason)
                for chunk in reader for c in chunk]


def fatal(path: Path, **options: object) -> str:
    with pytest.raises(InputFileError) as caught:
        read_all(path, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("data", "encoding"), [
    (f"{HEADER}\n{ROW}\n".encode(), "utf-8"),
    (codecs.BOM_UTF8 + f"{HEADER}\r\n{ROW}\r\n".encode(), "utf-8-sig"),
    (f"{HEADER}\n{ROW}\n".encode("utf-16"), "utf-16"),
])
def test_encoding_detected(tmp_path: Path, data: bytes, encoding: str) -> None:
    """UTF-8 with or without BOM and UTF-16 with BOM are recognised without --encoding."""
    path = make(tmp_path, data)
    with InputReader(path) as reader:
        assert reader.encoding == encoding
        assert reader.columns == HEADER.split(",")
    assert read_all(path) == [(1, "mobile", "+919800000001", "Suspended", "fraud")]


def test_explicit_utf8_on_a_bom_file_drops_the_bom(tmp_path: Path) -> None:
    """--encoding utf-8 on a file saved with a BOM still finds the first column."""
    path = make(tmp_path, codecs.BOM_UTF8 + f"{HEADER}\n{ROW}\n".encode())
    with InputReader(path, ReadOptions(encoding="UTF8")) as reader:
        assert reader.encoding == "utf-8-sig" and reader.columns[0] == "identifierName"


def test_cp1252_with_undefined_byte_suggests_latin1(tmp_path: Path) -> None:
    """A byte that is not Windows-1252 either names its line and suggests --encoding latin-1."""
    path = make(tmp_path, f"{HEADER}\n".encode() + b"email,a\x81@example.com,S,r\n")
    assert "line 2 has bytes that are not valid cp1252 (81)" in fatal(path, encoding="cp1252")
    assert "--encoding latin-1" in fatal(path, encoding="cp1252")
    assert read_all(path, encoding="latin-1")[0][2] == "a\x81@example.com"


@pytest.mark.parametrize(("delimiter", "option"), [(";", None), ("\t", None), ("\t", "tab"), (";", ";")])
def test_delimiter_detected_or_given(tmp_path: Path, delimiter: str, option: str | None) -> None:
    """Comma, semicolon and tab are detected from the header, or given with --delimiter."""
    path = make(tmp_path, f"{HEADER}\n{ROW}\n".replace(",", delimiter))
    with InputReader(path, ReadOptions(delimiter=option)) as reader:
        assert reader.delimiter == delimiter
    assert read_all(path, delimiter=option)[0][2] == "+919800000001"


def test_delimiter_inside_values_does_not_confuse_detection(tmp_path: Path) -> None:
    """The delimiter that splits the header into known columns wins, whatever the values hold."""
    path = make(tmp_path, f'{HEADER}\nemail,a@example.com,S,"a; b; c; d; e"\n')
    with InputReader(path) as reader:
        assert reader.delimiter == ","


def test_wrong_delimiter_given_names_the_fix(tmp_path: Path) -> None:
    """--delimiter ; on a comma file: the one-column header message suggests --delimiter."""
    message = fatal(make(tmp_path, f"{HEADER}\n{ROW}\n"), delimiter=";")
    assert "column identifierName is missing" in message and "pass --delimiter" in message


def test_header_matching_is_forgiving_and_extra_columns_ignored(tmp_path: Path) -> None:
    """Column names match in any case, with spaces, _ or - in them, in any order, among extra columns."""
    path = make(tmp_path, "notes, REASON ,Identifier-Value,row,identifier_name,Label\nhello,r,v1,9,email,L\n")
    with InputReader(path) as reader:
        assert reader.columns == ["notes", " REASON ", "Identifier-Value", "row", "identifier_name", "Label"]
    assert read_all(path) == [(1, "email", "v1", "L", "r")]


def test_header_error_lists_found_and_expected_columns(tmp_path: Path) -> None:
    """A missing column's message names it, the columns found, the expected ones, and the closest match."""
    message = fatal(make(tmp_path, f"identifierNmae,identifierValue,label,reason\n{ROW}\n"))
    assert message.startswith(f"{tmp_path / 'in.csv'}: column identifierName is missing")
    assert 'did you mean "identifierNmae"' in message
    assert "found columns: identifierNmae, identifierValue, label, reason" in message
    assert "expected: identifierName, identifierValue, label, reason" in message


def test_missing_reason_column_accepted_with_default(tmp_path: Path) -> None:
    """label and reason columns may be left out when defaults are given."""
    path = make(tmp_path, "identifierName,identifierValue,label\nmobile,+919800000001,\n")
    assert "pass --reason" in fatal(path, default_label="S")
    assert read_all(path, default_label="S", default_reason="bulk") == [(1, "mobile", "+919800000001", "S", "bulk")]


@pytest.mark.parametrize(("name", "message"), [
    ("missing.csv", "no such file; check the path"),
    (".", "is a directory"),
])
def test_unopenable_paths(tmp_path: Path, name: str, message: str) -> None:
    """A path that is not a readable file gives a one-line error."""
    assert message in fatal(tmp_path / name)


def test_runaway_quote_is_caught_by_the_field_limit(tmp_path: Path) -> None:
    """An opening quote that swallows the rest of a long file stops at 128 KiB with the line named."""
    rows = "\n".join(f"mobile,+91980{i:07d},S,r" for i in range(8000))
    path = make(tmp_path, f'{HEADER}\n{ROW}\nmobile,"+9198,S,r\n{rows}\n')
    assert "line 3 starts a value longer than 131072 characters" in fatal(path)


def test_rows_before_a_late_problem_are_yielded_first(tmp_path: Path) -> None:
    """Reading streams: chunks before a broken line far down arrive, then the error names the line."""
    rows = "\n".join(f"mobile,+91980{i:07d},S,r" for i in range(5000))
    path = make(tmp_path, f"{HEADER}\n{rows}\n".encode() + b"mobile,\xff,S,r\n")
    seen = 0
    with pytest.raises(InputFileError, match="line 5002 has bytes that are not valid utf-8"), \
            InputReader(path, ReadOptions(chunk_rows=1000)) as reader:
        for chunk in reader:
            seen += len(chunk)
    assert seen >= 3000  # the chunk holding the bad line is not yielded


def test_first_chunk_arrives_without_reading_the_whole_file(tmp_path: Path) -> None:
    """The first chunk is yielded after reading only its own rows, not the whole file."""
    rows = "\n".join(f"mobile,+91980{i:07d},Suspended,reason {i}" for i in range(60_000))
    path = make(tmp_path, f"{HEADER}\n{rows}\n")
    with InputReader(path, ReadOptions(chunk_rows=100)) as reader:
        first = next(iter(reader))
        assert [c.row.number for c in first] == list(range(1, len(first) + 1))
        assert len(first) >= 99  # the header took one of the first chunk's 100 lines
        assert reader._binary.tell() < path.stat().st_size / 10


def test_reader_is_iterated_once_and_closes(tmp_path: Path) -> None:
    """A reader is a single pass; close (or the with block) releases the file."""
    reader = InputReader(make(tmp_path, f"{HEADER}\n{ROW}\n"))
    assert sum(len(c) for c in reader) == 1
    with pytest.raises(RuntimeError):
        iter(reader).__next__()
    reader.close()
    assert reader._binary.closed
    reader.close()


def test_trailing_empty_cell_is_a_note(tmp_path: Path) -> None:
    """One empty cell past the header (a trailing delimiter) is ignored, with a note."""
    with InputReader(make(tmp_path, f"{HEADER}\n{ROW},\n{ROW}, \n")) as reader:
        checked = [c for chunk in reader for c in chunk]
    assert [c.problems for c in checked] == [[], []]
    assert checked[0].notes == ["an empty cell after the last column was ignored"]


@pytest.mark.parametrize(("data", "count"), [
    (f"{HEADER}\n{ROW}\n{ROW}\n", 2),
    (f"{HEADER}\n{ROW}\n{ROW}", 2),
    (f"{HEADER}\r\n{ROW}\r\n", 1),
    (f"{HEADER}\r{ROW}\r{ROW}\r", 2),
    (f"{HEADER}\n", 0),
    ("", 0),
])
def test_count_data_rows(tmp_path: Path, data: str, count: int) -> None:
    """The progress total counts lines after the header, whatever the line endings."""
    assert count_data_rows(make(tmp_path, data)) == count


def test_count_data_rows_unknown_for_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read has no total."""
    assert count_data_rows(tmp_path / "missing.csv") is None
