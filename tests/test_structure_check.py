"""check_structure's quick paths (numpy over the bytes; a file without quotes only decoded) decide like
a full csv pass."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkstatus.errors import InputFileError
from bulkstatus.input.reader import SAMPLE_BYTES, InputReader, ReadOptions, check_structure

HEADER = "identifierName,identifierValue,label,reason\n"
# Good rows past the sample the reader checks on opening, so that what follows is up to check_structure.
PADDING = "mobile,1,a,b\n" * (SAMPLE_BYTES // 10)
LIMIT = 256  # csv's field limit in the property test: the header and padding rows stay under a quarter of it
# Text made of quotes, separators and runs of letters long enough to cross the field limit.
BODIES = st.lists(st.one_of(st.sampled_from(['"', '""', ",", "\n", "\r", "\r\n", " "]),
                            st.integers(0, 2 * LIMIT).map(lambda n: "a" * n)), max_size=12).map("".join)


@contextmanager
def field_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def full_pass_fails(path: Path) -> bool:
    """The reference: parse the whole file with strict csv, as check_structure always did."""
    with InputReader(path, ReadOptions()) as reader, open(path, encoding=reader.encoding, newline="") as f:
        assert reader.delimiter == ","
        try:
            for _ in csv.reader(f, delimiter=reader.delimiter, strict=True):
                pass
        except (csv.Error, UnicodeDecodeError):
            return True
    return False


def quick_fails(path: Path) -> bool:
    try:
        check_structure(path, ReadOptions())
    except InputFileError:
        return True
    return False


@settings(max_examples=150, deadline=None)
@given(body=BODIES)
def test_same_verdict_as_a_full_csv_pass(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    """Any text after the sample, with a small field limit: the quick path and a full csv pass agree."""
    path = tmp_path_factory.mktemp("s") / "in.csv"
    path.write_text(HEADER + PADDING + body, encoding="utf-8", newline="")
    with field_limit(LIMIT):
        assert quick_fails(path) == full_pass_fails(path)


def test_bad_bytes_far_down_a_file_without_quotes(tmp_path: Path) -> None:
    """Undecodable bytes past the first block of a quote-free file are found, with their line."""
    path = tmp_path / "in.csv"
    path.write_bytes((HEADER + "mobile,919800000001,Suspended,fraud\n" * 40_000).encode() + b"mobile,\xff,a,b\n")
    with pytest.raises(InputFileError, match="line 40002"):
        check_structure(path)


def test_a_line_longer_than_the_field_limit_without_quotes(tmp_path: Path) -> None:
    """A quote-free line as long as csv's field limit goes to the full pass, which names the problem."""
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "mobile,1,a,b\n" * 10 + "mobile," + "9" * 200 + ",a,b\n", encoding="utf-8")
    with field_limit(100), pytest.raises(InputFileError, match="longer than 100"):
        check_structure(path)


def test_a_quoted_value_over_the_limit_is_not_vouched_for(tmp_path: Path) -> None:
    """Commas and line breaks inside a long quoted value do not hide its length; csv then names it."""
    path = tmp_path / "in.csv"
    long_value = '"' + ("abcdefgh,\n" * 30) + '""x"'  # 304 characters with delimiters and breaks inside
    path.write_text(HEADER + PADDING + f"mobile,1,a,{long_value}\n", encoding="utf-8", newline="")
    with field_limit(200), pytest.raises(InputFileError, match="longer than 200"):
        check_structure(path)
    with field_limit(400):
        check_structure(path)
