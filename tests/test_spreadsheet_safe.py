"""results.csv, retry.csv and fix.csv open in a spreadsheet as text: no cell runs as a formula or turns into a
number, and fix.csv or retry.csv fed back in still gives exactly the original values (bulkstatus/run/cells.py)."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

import pytest
from conftest import read_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkstatus.input.reader import InputReader, ReadOptions
from bulkstatus.input.rules import normalise
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.cells import FORMULA_STARTS, spreadsheet_safe
from bulkstatus.run.journal import Recorder, csv_writer

# The one formula a written cell may hold: a string literal, every quote inside doubled. A spreadsheet
# shows its text, with the doubled quotes as one.
GUARD = re.compile(r'="((?:[^"]|"")*)"', re.DOTALL)


def shown(cell: str) -> str:
    """What a spreadsheet shows for a cell that is either plain text or a ="..." string literal."""
    guard = GUARD.fullmatch(cell)
    return guard.group(1).replace('""', '"') if guard else cell


def assert_no_live_formula(cell: str) -> None:
    """A cell that starts like a formula is exactly one string literal: nothing in it is evaluated."""
    if cell.startswith(FORMULA_STARTS):
        assert GUARD.fullmatch(cell), f"cell {cell!r} would run as a formula"


# (value, the cell written, what reading the cell gives back). Every value here but those marked can come
# out of reading an input file, and reading its cell gives exactly the value.
CASES = [
    ("+919853464010", '="+919853464010"', "+919853464010"),  # a spreadsheet would show 919853464010
    ('=HYPERLINK("http://x","y")', '="=HYPERLINK(""http://x"",""y"")"', '=HYPERLINK("http://x","y")'),
    ("-fraud", '="-fraud"', "-fraud"),
    ("@list", '="@list"', "@list"),
    ("=1+2", '="=1+2"', "=1+2"),
    ("=cmd|' /C calc'!A0", "=\"=cmd|' /C calc'!A0\"", "=cmd|' /C calc'!A0"),  # DDE
    ("-1", '="-1"', "-1"),  # stays text, not the number -1
    ("+", '="+"', "+"),
    ("=", '="="', "="),
    ("\rnote", '="\rnote"', "\rnote"),  # a reason may start with a CR
    ("-a\"b,c\r\nline two", '="-a""b,c\r\nline two"', "-a\"b,c\r\nline two"),  # quote, comma, line breaks
    ('-""', '="-"""""', '-""'),
    ('="a"b"', '="=""a""b"""', '="a"b"'),  # not a well-formed guard: read as it is, so it is a value too
    ('=""x', '="=""""x"', '=""x'),
    # Not wrapped: nothing a spreadsheet evaluates (a formula character later on is harmless).
    ("", "", ""),
    ("abc", "abc", "abc"),
    ("007", "007", "007"),
    ("a@b.example", "a@b.example", "a@b.example"),
    ("1+1", "1+1", "1+1"),
    ('"quoted"', '"quoted"', '"quoted"'),
    ("\nline", "\nline", "\nline"),
    # Values reading never gives (spaces around a value are trimmed, guards unwrapped), so only a --label
    # or --reason default can hold them: still written as text, read back as reading the input would.
    ("\t=1+1", '="\t=1+1"', "=1+1"),
    ("\tx", '="\tx"', "x"),
    ('="x"', '="=""x"""', "x"),
]


@pytest.mark.parametrize(("value", "cell", "read_back"), CASES)
def test_cell_and_its_reading(value: str, cell: str, read_back: str) -> None:
    """The cell written for each value, what a spreadsheet shows of it, and what the reader gets back."""
    assert spreadsheet_safe(value) == cell
    assert_no_live_formula(cell)
    assert shown(cell) == value
    assert normalise(cell) == read_back
    if normalise(value) == value:  # any value reading can give
        assert read_back == value


def test_cells_through_csv_and_the_reader(tmp_path: Path) -> None:
    """Each cell, quoted by the csv writer as needed, parses back to the cell, and the reader (pandas, the
    whole check of a row) gives back what the table says."""
    path = tmp_path / "cells.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv_writer(fh)
        writer.writerow(["identifierName", "identifierValue", "label", "reason"])
        writer.writerows(["externalId", "EXT", "Suspended", spreadsheet_safe(value)] for value, _, _ in CASES)
    with path.open(encoding="utf-8", newline="") as fh:
        assert [r[3] for r in list(csv.reader(fh))[1:]] == [cell for _, cell, _ in CASES]
    with InputReader(path, ReadOptions(default_reason="default")) as reader:
        reasons = [c.row.reason for chunk in reader for c in chunk]
    assert reasons == [read_back or "default" for _, _, read_back in CASES]


# Any text a reader can give (what reading yields, with extra weight on the characters that matter here).
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=10)
SPECIAL = st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", '"', '="', '""', ",", " ", "HYPERLINK("])
VALUE = st.lists(st.one_of(SPECIAL, TEXT), max_size=5).map("".join)


@settings(max_examples=300, deadline=None)
@given(VALUE)
def test_any_read_value_comes_back_exactly(raw: str) -> None:
    """For any value reading gives, the cell is safe, shows the value, and reads back as exactly it."""
    value = normalise(raw)
    cell = spreadsheet_safe(value)
    assert_no_live_formula(cell)
    assert shown(cell) == value
    assert normalise(cell) == value


def test_recorder_writes_safe_cells_in_every_file() -> None:
    """The four values, the error and the fix, in results.csv, retry.csv and fix.csv; the other cells are
    left alone."""
    folder = Path(tempfile.mkdtemp())
    recorder = Recorder(folder)
    values = ("=1+1", "+919853464010", "-Suspended", "@list")
    recorder.record(Result(Row(1, *values), Outcome.FAILED, error="=evil()", error_code="8015"))
    recorder.record(Result(Row(2, "mobile", "+919800000001", "Suspended", "fraud"), Outcome.SUBMITTED,
                           request_id="r-1", state="AdminTask"))
    recorder.record(Result(Row(3, *values), Outcome.FAILED, error="-1 retries", transient=True))
    recorder.record(Result(Row(4, *values), Outcome.INVALID, error="=bad"))
    recorder.close()
    (result, submitted, _, _) = read_csv(folder / "results.csv")
    assert [result[c] for c in ("identifierName", "identifierValue", "label", "reason", "error")] == [
        '="=1+1"', '="+919853464010"', '="-Suspended"', '="@list"', '="=evil()"']
    assert (result["row"], result["outcome"], result["errorCode"]) == ("1", "failed", "8015")
    assert (submitted["identifierValue"], submitted["reason"], submitted["requestId"]) == (
        '="+919800000001"', "fraud", "r-1")
    refused, invalid = read_csv(folder / "fix.csv")
    assert [refused[c] for c in ("identifierName", "identifierValue", "label", "reason")] == [
        '="=1+1"', '="+919853464010"', '="-Suspended"', '="@list"']
    assert refused["fix"].startswith("the API answered code 8015 (=evil())") and invalid["fix"] == '="=bad"'
    [retry] = read_csv(folder / "retry.csv")
    assert [retry[c] for c in ("identifierName", "identifierValue", "label", "reason", "error")] == [
        '="=1+1"', '="+919853464010"', '="-Suspended"', '="@list"', '="-1 retries"']
    raw = (folder / "results.csv").read_bytes()
    assert b'"=""+919853464010"""' in raw  # the csv writer quotes the cell, as it holds quotes


# --- end to end: the real CLI against the simulator ----------------------------------------------------

# (identifierName, identifierValue, label, reason) as written in the input file; the run reads them
# trimmed (the tab before "@tabbed").
INPUT = [
    ("mobile", "+919853464010", "Suspended", '=HYPERLINK("http://x","y")'),  # submitted
    ("mobile", "+919853464011", "Suspended", "-fraud"),  # not found: failed
    ("externalId", "@list", "-Suspended", "+chargeback"),  # not found: failed
    ("externalId", "=1+2", "@label", "\rstarts with a carriage return"),  # submitted
    ("externalId", '-a"b,c', "Suspended", "=cmd|' /C calc'!A0\nline two"),  # not found: failed
    ("externalId", "\rEXT-6", "Suspended", "\t@tabbed"),  # invalid (a CR in an identifier): not sent
    ("externalId", "EXT-7", "=Suspended", "plain"),  # submitted
]
READ = [(n, v, label, reason.strip("\t")) for n, v, label, reason in INPUT]
NOT_FOUND = {"+919853464011", "@list", '-a"b,c'}
FAILED_ROWS = [READ[i] for i in (1, 2, 4, 5)]


def received(sim) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    out = []
    for body in sim.sim.state.received_bodies():
        task = body["payload"]["IntouchAPITask-Payload"]
        query, inner = task["queryParams"], task["body"]
        out.append((query["identifierName"], query["identifierValue"], inner["label"], inner["reason"]))
    return out


def field_starts(text: str) -> list[str]:
    """The first character of every field exactly as written (a quote for a quoted field), by a scan of
    the raw text: the quoted form is what a spreadsheet parses first."""
    starts, i, n = [], 0, len(text)
    while i < n:
        if text[i] == '"':
            starts.append('"')
            i += 1
            while True:  # to the closing quote; "" inside is a quote
                i = text.index('"', i) + 1
                if not text.startswith('"', i):
                    break
                i += 1
        else:
            ends = [j for j in (text.find(",", i), text.find("\r\n", i)) if j >= 0]
            end = min(ends) if ends else n
            starts.append(text[i:end][:1])
            i = end
        i += 2 if text.startswith("\r\n", i) else 1
    return starts


def raw_cells(path: Path) -> list[list[str]]:
    """Every cell of a file as bulkstatus wrote it, after checking its raw bytes: no field starts like a
    formula unless quoted, and a cell that starts like one is a single string literal."""
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\r\n")
    starts = field_starts(text)
    assert not [s for s in starts if s.startswith(FORMULA_STARTS)], f"a raw field of {path.name} starts a formula"
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert len(starts) == sum(len(row) for row in rows)
    for row in rows:
        for cell in row:
            assert_no_live_formula(cell)
    return rows


def test_run_and_rerun_of_fix_csv_keep_exact_values(sim, env, cli, tmp_path):  # type: ignore[no-untyped-def]
    """Values that start like formulas: the simulator gets exactly them, results.csv and fix.csv hold
    no live formula, and `bulkstatus run fix.csv` sends exactly the same values again."""
    sim.config.not_found = set(NOT_FOUND)
    path = tmp_path / "formulas.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv_writer(fh)  # CRLF line ends: a bare CR in a value is quoted
        writer.writerow(["identifierName", "identifierValue", "label", "reason"])
        writer.writerows(INPUT)
    first = cli("run", path)
    assert first.code == 1, first.err
    sent = received(sim)
    assert sorted(sent) == sorted(r for r in READ if r[1] != "\rEXT-6")

    results = raw_cells(first.folder / "results.csv")
    header, lines = results[0], results[1:]
    at = {c: header.index(c) for c in header}
    assert [[shown(line[at[c]]) for c in ("identifierName", "identifierValue", "label", "reason")]
            for line in lines] == [list(r) for r in READ]
    assert [line[at["outcome"]] for line in lines] == [
        "submitted", "failed", "failed", "submitted", "failed", "invalid", "submitted"]
    assert lines[0][at["identifierValue"]] == '="+919853464010"'
    assert lines[0][at["reason"]] == '="=HYPERLINK(""http://x"",""y"")"'
    failed = raw_cells(first.folder / "fix.csv")
    assert [tuple(shown(c) for c in line[:4]) for line in failed[1:]] == FAILED_ROWS
    assert raw_cells(first.folder / "retry.csv")[1:] == []

    again = cli("run", first.folder / "fix.csv")
    assert again.code == 1, again.err
    assert sorted(received(sim)[len(sent):]) == sorted(r for r in FAILED_ROWS if r[1] != "\rEXT-6")
    rerun = raw_cells(again.folder / "fix.csv")
    assert [line[:4] for line in rerun[1:]] == [line[:4] for line in failed[1:]]
    assert [line[7] for line in rerun[1:]] == ["failed", "failed", "failed", "invalid"]
    assert [line[5] for line in rerun[1:]] == ["2", "3", "5", "6"]  # sourceRow: the rows of formulas.csv
