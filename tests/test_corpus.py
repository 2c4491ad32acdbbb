"""Every file of the corpus: a one-line fatal message, or the expected outcome of every row."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from corpus_cases import CORPUS, Case

from bulkstatus.errors import InputFileError
from bulkstatus.input import validation as report_module
from bulkstatus.input.reader import InputReader, ReadOptions, check_structure
from bulkstatus.input.rules import PROBLEM_KINDS
from bulkstatus.input.validation import render_json, render_text, validate_file

BY_NAME = {case.name: case for case in CORPUS}


def write(case: Case, folder: Path) -> Path:
    path = folder / case.name
    path.write_bytes(case.data)
    return path


def outcomes(case: Case, path: Path) -> list[str]:
    report = validate_file(path, ReadOptions(**case.options))
    kinds: dict[int, list[str]] = {}
    for problem in report.problems:
        kinds.setdefault(problem.row, []).append(problem.kind)
    result = []
    for row in range(1, report.rows + 1):
        found = kinds.get(row, [])
        if found == ["duplicate"]:
            result.append("duplicate")
        else:
            result.append("invalid:" + "+".join(dict.fromkeys(found)) if found else "valid")
    return result


def test_corpus_is_large_and_well_formed() -> None:
    """The corpus has at least 25 bad or unusual files, unique names, and known problem kinds."""
    assert len(CORPUS) >= 25
    assert len(BY_NAME) == len(CORPUS)
    option_names = {f.name for f in fields(ReadOptions)}
    for case in CORPUS:
        assert (case.fatal is None) != (not case.rows), case.name
        assert set(case.options) <= option_names
        for row in case.rows:
            assert row in ("valid", "duplicate") or all(
                kind in PROBLEM_KINDS for kind in row.removeprefix("invalid:").split("+")), row


@pytest.mark.parametrize("case", [c for c in CORPUS if c.fatal], ids=lambda c: c.name)
def test_fatal_file_stops_with_one_line_message(case: Case, tmp_path: Path) -> None:
    """A file that cannot be read raises InputFileError with one line naming the file and the fix."""
    path = write(case, tmp_path)
    with pytest.raises(InputFileError) as caught:
        validate_file(path, ReadOptions(**case.options))
    message = str(caught.value)
    assert case.fatal in message
    assert message.startswith(f"{path}: ")
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_check_structure_finds_every_fatal_problem_before_reading(case: Case, tmp_path: Path) -> None:
    """The pass a run makes before sending raises for every fatal file, however far down, and only those."""
    path = write(case, tmp_path)
    if case.fatal:
        with pytest.raises(InputFileError, match=re.escape(case.fatal)):
            check_structure(path, ReadOptions(**case.options))
    else:
        check_structure(path, ReadOptions(**case.options))


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.fatal], ids=lambda c: c.name)
def test_readable_file_gives_each_row_its_outcome(case: Case, tmp_path: Path) -> None:
    """Each row of a readable file is valid, duplicate or invalid for the expected reasons."""
    path = write(case, tmp_path)
    assert outcomes(case, path) == list(case.rows)
    report = validate_file(path, ReadOptions(**case.options))
    assert render_text(report) and render_json(report)
    if case.values:
        with InputReader(path, ReadOptions(**case.options)) as reader:
            read = {c.row.number: c.row for chunk in reader for c in chunk}
        for number, expected in case.values.items():
            row = read[number]
            assert (row.identifier_name, row.identifier_value, row.label, row.reason) == expected


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_validate_command_exit_status(case: Case, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """`bulkstatus validate` exits 0, 1 or 2 as documented, with no traceback."""
    path = write(case, tmp_path)
    result = cli("validate", path, *case.cli_args)
    assert result.code == case.exit_status, result.err
    assert "Traceback" not in result.err + result.out
    if case.fatal:
        assert result.err.count("\n") == 1 and case.fatal in result.err


def test_many_chunks_keep_numbering_and_order(tmp_path: Path) -> None:
    """Rows keep their numbers and order across chunk boundaries, with blank rows anywhere."""
    lines = ["identifierName,identifierValue,label,reason"]
    for i in range(1, 1001):
        lines.append(f"mobile,+9198{i:08d},S,r")
        if i % 7 == 0:
            lines.append(",,,")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    with InputReader(path, ReadOptions(chunk_rows=64)) as reader:
        rows = [c.row for chunk in reader for c in chunk]
        assert reader.skipped_empty_rows == 1000 // 7
    assert [r.number for r in rows] == list(range(1, 1001))
    assert [r.identifier_value for r in rows] == [f"+9198{i:08d}" for i in range(1, 1001)]


def test_validate_report_text_and_json(tmp_path: Path) -> None:
    """The report gives counts per kind, then each problem with row, column and fix; JSON says the same."""
    path = write(BY_NAME["duplicates.csv"], tmp_path)
    path.write_text(path.read_text() + "mobil,+919800000009,S,x\nemail,a@b,,x\n")
    report = validate_file(path)
    assert (report.rows, report.valid, report.invalid, report.duplicates) == (11, 4, 2, 5)
    text = render_text(report)
    assert text.splitlines()[0] == f"{path}: 11 rows: 4 valid, 2 invalid, 5 duplicate (utf-8, comma-delimited)"
    assert "  5  same customer as an earlier row (not sent)" in text
    assert "  1  identifierName is not one of the documented names" in text
    assert " 11  label            label is empty and no default label is set" in text
    assert "  6  identifierValue  duplicate of row 5: the same email address (compared in any letter case)" in text
    assert text.endswith("2 rows would be recorded as invalid and not sent; fix them and validate again.")
    data = json.loads(render_json(report))
    assert data["counts"] == {"duplicate": 5, "unknown-identifier-name": 1, "bad-email": 1, "empty-label": 1}
    assert data["problems"][0] == {"row": 2, "column": "identifierValue", "kind": "duplicate",
                                   "message": "duplicate of row 1: the same mobile number (compared by its digits: "
                                              "a leading + or 00, spaces and dashes ignored) appears there, and "
                                              "only that row is sent; delete this row"}
    assert (data["ok"], data["invalid"], data["unlisted_problems"]) == (False, 2, 0)


def test_validate_report_all_valid(tmp_path: Path) -> None:
    """A clean file says so in one line after the summary."""
    report = validate_file(write(BY_NAME["bom-crlf.csv"], tmp_path))
    assert report.ok and render_text(report).endswith("OK: every row can be sent.")


def test_validate_report_lists_at_most_max_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_LISTED problems are counted, not listed, so memory stays flat for huge broken files."""
    monkeypatch.setattr(report_module, "MAX_LISTED", 3)
    path = tmp_path / "bad.csv"
    path.write_text("identifierName,identifierValue,label,reason\n" + "mobil, x ,L,r\n" * 10)
    report = validate_file(path)
    assert (len(report.problems), report.unlisted_problems, report.counts["unknown-identifier-name"]) == (3, 7, 10)
    assert (len(report.notes), report.unlisted_notes) == (3, 7)
    assert "... and 7 more problems not listed" in render_text(report)


FATAL = [case for case in CORPUS if case.fatal is not None]


@pytest.mark.parametrize("case", FATAL, ids=[case.name for case in FATAL])
def test_run_on_a_fatal_file_sends_nothing(case: Case, tmp_path: Path, sim, env, cli) -> None:  # type: ignore[no-untyped-def]
    """`bulkstatus run` on every fatal file: exit 2, one line with the expected message, no request."""
    path = tmp_path / case.name
    path.write_bytes(case.data)
    result = cli("run", path, *case.cli_args)
    assert result.code == 2, result.err
    assert case.fatal in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    stats = sim.sim.state.stats()
    assert stats["create_calls"] == 0 and stats["list_calls"] == 0
