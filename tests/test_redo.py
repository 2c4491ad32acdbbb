"""Which rows go to retry.csv and which to fix.csv, what fix.csv says to change, and the sourceRow that a
re-run reads back (bulkstatus/run/redo.py, bulkstatus/input/rules.py): tables of the pure functions, and
the reader on files that carry a sourceRow column."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_csv

from bulkstatus.input.reader import InputReader
from bulkstatus.input.rules import SOURCE_NOTE, source_row
from bulkstatus.input.validation import validate_file
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.journal import Recorder, read_resume_point, result_fields, result_from_fields
from bulkstatus.run.redo import Redo, fix_for, redo

R, F = Redo.RETRY, Redo.FIX


@pytest.mark.parametrize("outcome,transient,in_doubt,expected", [
    (Outcome.UNPROCESSED, False, False, R),  # the run stopped before it
    (Outcome.UNPROCESSED, False, True, None),  # sent, answer lost: only resume looks it up
    (Outcome.FAILED, True, False, R),  # retries ran out
    (Outcome.FAILED, False, False, F),  # a final answer: 8015, 400
    (Outcome.INVALID, False, False, F),
    (Outcome.SUBMITTED, False, False, None),
    (Outcome.DUPLICATE, False, False, None),
    (Outcome.PENDING_EXISTS, False, False, None),
    (Outcome.DRY_RUN, False, False, None),
])
def test_which_file(outcome: Outcome, transient: bool, in_doubt: bool, expected: Redo | None) -> None:
    """Each outcome's file: retry.csv, fix.csv or neither."""
    assert redo(outcome, transient, in_doubt) is expected


ROW = Row(1, "MOBILE", "919999999999", "Suspended", "r")


@pytest.mark.parametrize("status,code,error,expected", [
    (400, "8015", "Customer not found for the given identifiers",
     "the API answered HTTP 400, code 8015 (Customer not found for the given identifiers): no customer has this "
     "mobile; correct identifierValue (or identifierName), or remove the row"),
    (400, "8013", "Invalid identifier", "the API answered HTTP 400, code 8013 (Invalid identifier): the API does "
     "not take this identifier; correct identifierName or identifierValue"),
    (400, "8003", "Invalid source", "the API answered HTTP 400, code 8003 (Invalid source): the source is a setting "
     "of the run, not of the row; run the file with the right --source"),
    (400, "1064", "", "the API answered HTTP 400, code 1064: the org is a setting of the run, not of the row; "
     "check --org-id"),
    (409, "", "HTTP 409", "the API answered HTTP 409: correct the row as the API's message says, or remove it"),
    (422, "77", "label unknown", "the API answered HTTP 422, code 77 (label unknown): correct the row as the "
     "API's message says, or remove it"),
    (None, "", "", "the API refused the row: correct the row as the API's message says, or remove it"),
])
def test_fix_of_a_refused_row(status: int | None, code: str, error: str, expected: str) -> None:
    """A refusal's fix: what the API said, then what that asks the person to change."""
    assert fix_for(Result(ROW, Outcome.FAILED, http_status=status, error_code=code, error=error)) == expected


def test_fix_of_an_invalid_row_is_the_checks_message() -> None:
    """The checks' messages already name the field and the fix."""
    error = 'identifierName "phone" is not a documented identifier name (did you mean "mobile"?); use one of ...'
    assert fix_for(Result(ROW, Outcome.INVALID, error=error)) == error


@pytest.mark.parametrize("cell,expected", [
    (None, (0, None)),  # no sourceRow column
    ("", (0, None)),  # a row added by hand: its own number
    ("101", (101, None)),
    ("007", (7, None)),
    (" 12\t", (12, None)),
    ('="42"', (42, None)),  # an Excel text guard
    ("  ", (0, None)),
    ("0", (0, SOURCE_NOTE)),
    ("-3", (0, SOURCE_NOTE)),
    ("1.0", (0, SOURCE_NOTE)),
    ("SRC-12", (0, SOURCE_NOTE)),
    ("\u0663", (0, SOURCE_NOTE)),  # an Arabic-Indic digit: not what bulkstatus writes
    ("9" * 19, (0, SOURCE_NOTE)),
    ("9" * 5000, (0, SOURCE_NOTE)),  # no int() of thousands of digits
])
def test_source_row_cell(cell: str | None, expected: tuple[int, str | None]) -> None:
    """A sourceRow cell: a whole number from 1, or none (the row's own number) with a note for anything else."""
    assert source_row(cell) == expected


def test_reader_takes_source_rows_from_the_column(tmp_path: Path) -> None:
    """Any spelling of the header the other columns allow; empty cells and junk fall back to the row's own
    number, junk with a note that validate lists."""
    path = tmp_path / "redo.csv"
    path.write_text("Source Row,identifierName,identifierValue,label,reason\n"
                    "101,mobile,919800000001,Suspended,r\n"
                    ",mobile,919800000002,Suspended,r\n"
                    "SRC-9,mobile,919800000003,Suspended,r\n", encoding="utf-8")
    with InputReader(path) as reader:
        rows = [c for chunk in reader for c in chunk]
    assert [(c.row.number, c.row.origin, c.row.source_row) for c in rows] == [(1, 101, 101), (2, 0, 2), (3, 0, 3)]
    assert [c.notes for c in rows] == [[], [], [SOURCE_NOTE]]
    report = validate_file(path)
    assert report.ok and [(n.row, n.message) for n in report.notes] == [(3, SOURCE_NOTE)]


def test_transient_survives_the_journal() -> None:
    """The journal keeps a transient failure apart from a refusal, and reads lines of an earlier version."""
    transient = Result(ROW, Outcome.FAILED, error="retries ran out", transient=True)
    refused = Result(ROW, Outcome.FAILED, error="not found")
    assert result_from_fields(ROW, result_fields(transient)).transient
    assert not result_from_fields(ROW, result_fields(refused)).transient
    assert len(result_fields(refused)) == 9  # as before: nothing more per row for the common case


def test_checkpoints_name_all_three_files(tmp_path: Path) -> None:
    """A checkpoint holds where results.csv, retry.csv and fix.csv end, and the rows of each redo file;
    resume starts from it. A checkpoint of an earlier version (failed.csv) is not used."""
    recorder = Recorder(tmp_path)
    recorder.record(Result(Row(1, "mobile", "1", "S", "r", 41), Outcome.FAILED, error="x", transient=True))
    recorder.record(Result(Row(2, "mobile", "2", "S", "r", 42), Outcome.INVALID, error="bad"))
    recorder.record(Result(Row(3, "mobile", "3", "S", "r"), Outcome.SUBMITTED, request_id="q"))
    recorder.close()
    point = read_resume_point(tmp_path)
    sizes = [(tmp_path / name).stat().st_size for name in ("results.csv", "retry.csv", "fix.csv")]
    assert (point.last_row, point.results_bytes, point.retry_bytes, point.fix_bytes) == (3, *sizes)
    assert point.redo == {"retry": 1, "fix": 1}
    assert [(r["row"], r["sourceRow"]) for r in read_csv(tmp_path / "results.csv")] == [
        ("1", "41"), ("2", "42"), ("3", "3")]
    with (tmp_path / "journal.jsonl").open("a") as fh:
        fh.write('{"k":3,"rb":1,"fb":1,"n":{}}\n')  # an earlier version's: ignored, the last valid one stays
    assert read_resume_point(tmp_path).last_row == 3
    (tmp_path / "journal.jsonl").write_text('{"k":3,"rb":1,"fb":1,"n":{}}\n')
    assert read_resume_point(tmp_path).last_row == 0  # rebuilt from the journal's outcomes


def test_resume_cuts_each_file_back_to_its_checkpoint(tmp_path: Path) -> None:
    """Lines written after the last checkpoint (a kill -9 between a batch and its checkpoint) are cut from
    results.csv, retry.csv and fix.csv alike; a checkpoint one of them does not hold whole is passed over."""
    recorder = Recorder(tmp_path)
    recorder.record(Result(Row(1, "mobile", "1", "S", "r", 41), Outcome.FAILED, error="x", transient=True))
    recorder.flush()  # a checkpoint after row 1
    recorder.record(Result(Row(2, "mobile", "2", "S", "r", 42), Outcome.INVALID, error="bad"))
    recorder.close()
    whole = {name: (tmp_path / name).read_bytes() for name in ("results.csv", "retry.csv", "fix.csv")}
    for name in whole:
        with (tmp_path / name).open("ab") as fh:
            fh.write(b"a,torn,line\r\n")
    point = read_resume_point(tmp_path)
    Recorder(tmp_path, point).close()
    assert {name: (tmp_path / name).read_bytes() for name in whole} == whole
    # fix.csv cut short by hand: the checkpoint after row 1 is the last the three files hold.
    (tmp_path / "fix.csv").write_bytes(whole["fix.csv"][:-3])
    point = read_resume_point(tmp_path)
    assert (point.last_row, point.redo) == (1, {"retry": 1})
    resumed = Recorder(tmp_path, point)
    resumed.record(Result(Row(2, "mobile", "2", "S", "r", 42), Outcome.INVALID, error="bad"))
    resumed.close()
    assert {name: (tmp_path / name).read_bytes() for name in whole} == whole
    assert resumed.redo == {"retry": 1, "fix": 1}
