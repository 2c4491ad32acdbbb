"""Workbooks read directly: .xlsx (written by openpyxl), .ods (written by odfpy) and .xls (written by xlwt),
value for value as the simulator receives them, numbers flagged, resume and the round trip as for CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_csv

from bulkstatus.input.reader import InputReader, ReadOptions, count_data_rows
from bulkstatus.input.rules import NUMERIC_ID, normalise
from bulkstatus.input.sheets import _column, _number_text
from bulkstatus.input.workbook import _column_letter

HEADER = ("identifierName", "identifierValue", "label", "reason")
# What ops lists hold and a hand-made CSV export breaks: leading zeros, + mobiles, emails with +, accents,
# CJK, reasons with commas, quotes and line breaks, spaces that are content inside a value.
LIST = [
    ("externalId", "007123", "Suspended", "fraud review, case 12"),
    ("mobile", "+447700900123", "Suspended", 'said "stop", twice'),
    ("email", "ana+vip@example.com", "Active", "line one\nline two"),
    ("email", "josé.núñez@exämple.es", "Active", "réactivé après vérification"),
    ("externalId", "顧客-00042", "Suspended", "不正利用の疑い"),
    ("cardnumber", "0000507105000000001", "Active", "card 0000 kept"),
    ("mobile", "00919853464010", "Suspended", "two  spaces inside"),
]


def write_xlsx(path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = HEADER, sheet: str = "Sheet1",
               first: list[tuple[Any, ...]] | None = None) -> Path:
    from openpyxl import Workbook

    book = Workbook()  # the normal (not write-only) mode writes a shared-strings table, as Excel does
    ws = book.active
    assert ws is not None
    if first is not None:  # another sheet before the one with the rows
        ws.title = "notes"
        for row in first:
            ws.append(row)
        ws = book.create_sheet(sheet)
    else:
        ws.title = sheet
    ws.append(header)
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def write_ods(path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = HEADER) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="customers")
    for values in [header, *rows]:
        tr = TableRow()
        for value in values:
            if isinstance(value, int | float):
                cell = TableCell(valuetype="float", value=value)
                cell.addElement(P(text=str(value)))
            else:
                cell = TableCell(valuetype="string")
                for line in str(value).split("\n"):
                    cell.addElement(P(text=line))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def write_xls(path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = HEADER) -> Path:
    import xlwt  # type: ignore[import-untyped]

    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("customers")
    for r, values in enumerate([header, *rows]):
        for c, value in enumerate(values):
            ws.write(r, c, value)
    book.save(str(path))
    return path


WRITERS = {"xlsx": write_xlsx, "ods": write_ods, "xls": write_xls}


def accepted_values(sim) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((r.identifier_name, r.identifier_value, r.label, r.reason) for r in sim.sim.state.accepted())


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_the_list_reaches_the_simulator_value_for_value(kind: str, sim, env, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each value of the list, written to a workbook by a real producer, is validated and sent exactly as typed."""
    path = WRITERS[kind](tmp_path / f"list.{kind}", LIST)
    checked = cli("validate", path)
    assert checked.code == 0, checked.out + checked.err
    assert f"{len(LIST)} rows: {len(LIST)} valid, 0 invalid" in checked.out and ', sheet "' in checked.out
    result = cli("run", path)
    assert result.code == 0, result.err
    assert accepted_values(sim) == sorted(LIST)
    results = read_csv(result.folder / "results.csv")
    # (results.csv guards a value starting with + as ="..." for spreadsheets; reading it back unwraps it)
    assert [(normalise(r["identifierValue"]), r["reason"]) for r in results] == [(v, why) for _, v, _, why in LIST]


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_ids_stored_as_numbers_are_invalid_and_name_the_fix(kind: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A number cell in identifierValue is invalid (its zeros or + may be gone); a number as reason is its text."""
    rows: list[tuple[Any, ...]] = [("mobile", 919853464010, "Suspended", "typed as a number"),
                                   ("externalId", "007123", "Active", 2026)]
    path = WRITERS[kind](tmp_path / f"numbers.{kind}", rows)
    result = cli("validate", path, "--format", "json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert (report["valid"], report["invalid"], report["counts"]) == (1, 1, {"stored-as-number": 1})
    [problem] = report["problems"]
    assert problem["row"] == 1 and problem["column"] == "identifierValue"
    assert '"919853464010" is ' + NUMERIC_ID in problem["message"]


def test_sheet_by_name_and_blank_rows(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """--sheet picks a sheet by name; an unknown one lists them; blank rows are skipped and not counted."""
    rows: list[tuple[Any, ...]] = [LIST[0], (None, None, None, None), LIST[1]]
    path = write_xlsx(tmp_path / "two.xlsx", rows, sheet="customers", first=[("just", "notes")])
    first = cli("validate", path)
    assert first.code == 2 and "column identifierName is missing" in first.err
    good = cli("validate", path, "--sheet", "customers")
    assert good.code == 0 and '2 rows: 2 valid' in good.out and "1 row with every cell empty skipped" in good.out
    wrong = cli("validate", path, "--sheet", "Customers")
    assert wrong.code == 2
    assert wrong.err.strip().endswith('has no sheet named "Customers"; its sheets are "notes", "customers": pass '
                                      "--sheet with one of them (or leave --sheet out for the first)")
    csv_file = tmp_path / "plain.csv"
    csv_file.write_text(",".join(HEADER) + "\nmobile,919853464010,Suspended,x\n")
    not_a_book = cli("validate", csv_file, "--sheet", "customers")
    assert not_a_book.code == 2 and '--sheet "customers" is for workbooks' in not_a_book.err


def test_a_value_right_of_the_header_makes_the_row_invalid(tmp_path: Path) -> None:
    """A cell past the header's last column is an extra cell, as in a CSV file; empty ones are ignored."""
    path = write_xlsx(tmp_path / "wide.xlsx", [(*LIST[0], None, "note"), (*LIST[1], "")])
    with InputReader(path) as reader:
        first, second = [c for chunk in reader for c in chunk]
    assert first.kinds == [("row", "too-many-cells")] and "a value in column F" in first.problems[0]
    assert second.valid


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_rest_and_count_match_iterating(kind: str, tmp_path: Path) -> None:
    """rest() (a stopped run's rest) gives the rows iterating gives, after any row; the count is the rows."""
    rows = [("mobile", f"9198534640{i:02d}", "Suspended", f"r{i}") for i in range(25)]
    path = WRITERS[kind](tmp_path / f"rest.{kind}", rows)
    options = ReadOptions(chunk_rows=7, default_label="x")
    with InputReader(path, options) as reader:
        read = [(c.row.number, c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason, 0)
                for chunk in reader for c in chunk]
    for after in (0, 1, 24, 25):
        with InputReader(path, options) as reader:
            assert [r for batch in reader.rest(after, batch=4) for r in batch] == read[after:]
    assert count_data_rows(path) == 25


def test_resume_and_retry_file_of_a_workbook(sim, env, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--limit then resume sends every row once; retry.csv of a workbook's run, fed back in, sends the same value."""
    flaky = "+447700900999"
    rows = [*LIST, ("mobile", flaky, "Suspended", "always 503 at first")]
    path = write_xlsx(tmp_path / "night.xlsx", rows)
    sim.config.always_error = {flaky}
    first = cli("run", path, "--limit", "3", "--max-retries", "0")
    assert first.code == 0, first.err
    assert len(sim.sim.state.accepted()) == 3
    resumed = cli("resume", first.folder, "--max-retries", "0")
    assert resumed.code == 1, resumed.err
    assert accepted_values(sim) == sorted(LIST)
    [retry] = read_csv(first.folder / "retry.csv")
    assert (normalise(retry["identifierValue"]), retry["sourceRow"]) == (flaky, "8")
    sim.config.always_error = set()
    again = cli("run", first.folder / "retry.csv")
    assert again.code == 0, again.err
    assert accepted_values(sim) == sorted(rows)


def test_broken_workbook_sends_nothing(sim, env, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A truncated .xlsx is refused before anything is sent, with what to do."""
    path = write_xlsx(tmp_path / "cut.xlsx", LIST * 50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    result = cli("run", path)
    assert result.code == 2 and sim.sim.state.accepted() == []
    assert "zip archive" in result.err or "cannot be read" in result.err


@pytest.mark.parametrize(("raw", "width", "text"), [
    ("919853464010", 0, "919853464010"),
    ("5.0710500000000001E+15", 0, "5071050000000000"),
    ("7123", 6, "007123"),
    ("1.5", 0, "1.5"),
    ("4.4E-2", 0, "0.044"),
    ("-3", 0, "-3"),
])
def test_number_text(raw: str, width: int, text: str) -> None:
    """An .xlsx number cell in full digits, zero-padded by a 000000 format."""
    assert _number_text(raw, width) == text


@pytest.mark.parametrize(("reference", "index"), [("A1", 0), ("D7", 3), ("Z9", 25), ("AA10", 26), ("XFD1", 16383)])
def test_columns(reference: str, index: int) -> None:
    """Cell references to column numbers and back."""
    assert _column(reference) == index
    assert _column_letter(index) == reference.rstrip("0123456789")


def _cut(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: _cut(write_ods(d / "cut.ods", LIST)), "cannot be read as an OpenDocument spreadsheet (.ods) (its zip "
                                                     "archive is damaged or cut short"),
    (lambda d: _cut(write_xlsx(d / "cut.xlsx", LIST)), "cannot be read as an Excel workbook (.xlsx)"),
    (lambda d: _zip(d / "list.zip"), "is a zip archive, but not an .xlsx or .ods workbook nor a CSV file; if it holds "
                                     "a CSV file, unzip it first"),
    (lambda d: _write(d / "escaped.csv", ",".join(HEADER) + '\nmobile,919853464010,Suspended,"he said \\"stop\\""\n'),
     'line 2 escapes a quote with a backslash (\\"), which CSV does not do: a quote inside a quoted value is '
     'doubled ("")'),
])
def test_messages_name_the_real_cause(make, message: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A damaged .ods is called an OpenDocument spreadsheet, a plain zip a zip, \\" a backslash-escaped quote."""
    result = cli("validate", make(tmp_path))
    assert result.code == 2 and message in result.err, result.err


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _zip(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("list.csv", ",".join(HEADER) + "\n")
    return path
