"""Duplicates as the API would see them, one customer given two labels, and ids a spreadsheet or an export
broke: the rules as tables, then validate and a run against the simulator, resume included."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from conftest import read_csv, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkstatus.errors import InputFileError
from bulkstatus.input.duplicates import customer_key
from bulkstatus.input.reader import InputReader, ReadOptions
from bulkstatus.input.repeats import conflict_message, find_repeats
from bulkstatus.input.rules import BROKEN_IDS, PROBLEM_KINDS, RowRules, broken_id, check_row
from bulkstatus.input.validation import validate_file
from bulkstatus.model import IDENTIFIER_NAMES


@pytest.mark.parametrize(("name", "value", "key"), [
    ("email", "DUP@Example.COM", ("email", "dup@example.com")),
    ("email", "a+tag@example.com", ("email", "a+tag@example.com")),
    ("mobile", "+919853464010", ("mobile", "919853464010")),
    ("mobile", "00919853464010", ("mobile", "919853464010")),
    ("mobile", "+0091 98534-64010", ("mobile", "919853464010")),
    ("mobile", "(91) 9853.464010", ("mobile", "919853464010")),
    ("mobile", "09853464010", ("mobile", "09853464010")),  # a national 0 is a digit like any other
    ("externalId", "EXT-1", ("externalId", "EXT-1")),  # other kinds as written: letter case counts
    ("cardnumber", "00123", ("cardnumber", "00123")),
])
def test_customer_key(name: str, value: str, key: tuple[str, str]) -> None:
    """Emails in any letter case, mobiles by their digits, everything else exactly."""
    assert customer_key(name, value) == key


@pytest.mark.parametrize(("name", "value", "kind"), [
    ("cardnumber", "5.07105E+15", "scientific-notation"),
    ("mobile", "9.19853E+11", "scientific-notation"),
    ("externalId", "1,23E+10", "scientific-notation"),  # a comma-decimal locale
    ("cardExternalId", "5E+15", "scientific-notation"),
    ("mobile", "#######", "column-too-narrow"),
    ("externalId", "##", "column-too-narrow"),
    ("cardnumber", "???0042", "lost-characters"),
    ("mobile", "91985346401?", "lost-characters"),
    ("externalId", "M\u00fcller??", "lost-characters"),
    ("externalId", "EXT-\ufffd42", "lost-characters"),
    ("email", "m\ufffdller@example.com", "lost-characters"),
    ("externalId", "\\N", "missing-value"),
    ("email", "NULL", "missing-value"),
    ("externalId", "null", "missing-value"),
    ("wechat", "nan", "missing-value"),
    ("fbid", "NaN", "missing-value"),
    ("martjackId", "None", "missing-value"),
    ("externalId", "<NA>", "missing-value"),
    ("externalId", "#N/A", "spreadsheet-error"),
    ("cardnumber", "#REF!", "spreadsheet-error"),
    ("externalId", "#NAME?", "spreadsheet-error"),
    ("mobil", "NULL", "missing-value"),  # an undocumented name: the rules for every kind still hold
    # Not broken: legitimate in their kind.
    ("externalId", "A#1", None),
    ("externalId", "#42", None),
    ("externalId", "what?", None),  # free text: a single ? may be real
    ("wechat", "wx?id", None),
    ("email", "what?@example.com", None),  # ? and # are legal before the @
    ("email", "a#b@example.com", None),
    ("email", "e+15@example.com", None),
    ("externalId", "1e5", None),  # no sign: not how a spreadsheet writes an exponent
    ("externalId", "2E+5A", None),
    ("externalId", "NA", None),
    ("externalId", "none", None),
    ("externalId", "nullable", None),
    ("externalId", "N", None),
    ("cardnumber", "5071050724", None),
])
def test_broken_ids(name: str, value: str, kind: str | None) -> None:
    """Each rule of BROKEN_IDS, and values it must not flag; every message names the cause and the fix."""
    found = broken_id(name, value)
    assert (found[0] if found else None) == kind
    if found:
        assert found[1].startswith(f'identifierValue "{value}" ') and "; " in found[1]
        assert found[0] in PROBLEM_KINDS


@pytest.mark.parametrize("value", ["5.07105E+15", "#######", "???0042", "\\N", "NULL", "nan", "#N/A", "ab\ufffd"])
@pytest.mark.parametrize("name", ["externalId", "cardnumber", "mobile", "email", "wechat"])
def test_check_row_refuses_what_broken_id_finds(name: str, value: str) -> None:
    """The fast path of check_row lets nothing through that BROKEN_IDS flags, and the broken-id message
    replaces the kind's shape message (a mobile ???0042 is a lost digit, not just "not a mobile")."""
    found = broken_id(name, value)
    checked = check_row(1, name, value, "Suspended", "fraud", RowRules())
    if found is None:
        assert not any(kind == "scientific-notation" for _, kind in checked.kinds)
        return
    assert checked.problems[0] == found[1]
    assert checked.kinds[0] == ("identifierValue", found[0])


def test_every_rule_has_a_heading() -> None:
    """validate counts each kind under a heading."""
    assert {b.kind for b in BROKEN_IDS} <= set(PROBLEM_KINDS)


@pytest.mark.parametrize(("rows", "conflicting"), [
    ([("email", "a@example.com", "Suspended"), ("email", "A@example.com", "Active")], {1: [1, 2], 2: [1, 2]}),
    ([("mobile", "919853464010", "Suspended"), ("mobile", "+919853464010", "Suspended")], {}),  # a duplicate
    ([("mobile", "919853464010", "Suspended"), ("externalId", "919853464010", "Active")], {}),  # two customers
    ([("externalId", "X", "Suspended"), ("externalId", "x", "Active")], {}),  # externalIds as written
    ([("mobile", "1", "A"), ("mobile", "2", "A"), ("mobile", "+1", "A"), ("mobile", "001", "B"),
      ("mobile", "2", "A")], {1: [1, 3, 4], 3: [1, 3, 4], 4: [1, 3, 4]}),
    ([("mobile", "1", "A"), ("mobile", "1", ""), ("mobile", "", "B")], {}),  # no label, no value: no part
    ([("MOBILE", "1", "A"), ("mobile", "1", "a")], {1: [1, 2], 2: [1, 2]}),  # labels exactly
])
def test_find_conflicts(rows: list[tuple[str, str, str]], conflicting: dict[int, list[int]]) -> None:
    """Which rows belong to a customer given different labels, with all of that customer's rows."""
    batches = [(n, [name], [value], [label]) for n, (name, value, label) in enumerate(rows, 1)]
    found = find_repeats(iter(batches))
    assert [found.rows_with(n) for n in range(1, len(rows) + 1)] == [
        find_repeats(iter([(1, *map(list, zip(*rows, strict=True)))])).rows_with(n)  # one batch, the same
        for n in range(1, len(rows) + 1)]
    assert {n: found.rows_with(n) for n in range(1, len(rows) + 1) if found.rows_with(n)} == conflicting
    assert len(found) == (1 if conflicting else 0)


@pytest.mark.parametrize(("rows", "repeated"), [
    ([("email", "a@example.com", "S"), ("email", "A@example.com", "S"), ("email", "b@example.com", "S")], {1, 2}),
    ([("mobile", "919853464010", "S"), ("mobile", "+919853464010", "A")], {1, 2}),
    ([("mobile", "1", "A"), ("externalId", "1", "A")], set()),  # two kinds: two customers
    ([("mobile", "1", "A"), ("mobile", "1", ""), ("mobile", "", "A")], set()),  # no label, no value: no part
    ([("mobile", "5", "A")] * 3 + [("mobile", "6", "A")] + [("mobile", "7", "A")] * 5 + [("mobile", "5", "B")],
     {1, 2, 3, 5, 6, 7, 8, 9, 10}),  # rows 7 to 10 cross a byte of the bitmap
    ([], set()),
])
def test_rows_that_may_repeat(rows: list[tuple[str, str, str]], repeated: set[int]) -> None:
    """The pre-pass's candidates for the duplicate check: every row whose customer is in another row."""
    found = find_repeats(iter([(n, [name], [value], [label]) for n, (name, value, label) in enumerate(rows, 1)]))
    assert {n for n in range(0, len(rows) + 20) if found.may_repeat(n)} == repeated
    assert found.repeated == len(repeated)


_CELLS = st.tuples(
    st.sampled_from(["mobile", "MOBILE", "email", "externalId", "bogus", ""]),
    st.sampled_from(["919853464010", "+919853464010", "0091 9853464010", " 919853464010", "a@x.com",
                     "A@X.com", "a@x.com ", "EXT-1", "ext-1", '="EXT-1"', "", "5.07105E+15"]),
    st.sampled_from(["Suspended", "Active", " Suspended", ""]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_CELLS, min_size=1, max_size=40))
def test_duplicates_and_conflicts_as_a_row_by_row_reference(tmp_path, rows) -> None:
    """validate's duplicates and label conflicts (the pre-pass's candidates, then the index) are those of a
    plain reference: every checked row, customers by customer_key, the first valid row of each kept."""
    path = tmp_path / "p.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["identifierName", "identifierValue", "label", "reason"])
        out.writerows([(*cells, "r") for cells in rows])
    options = ReadOptions()
    try:
        with InputReader(path, options) as reader:
            checked = [c for chunk in reader for c in chunk]
    except InputFileError:  # a file the reader refuses (every row blank): validate refuses it too
        with pytest.raises(InputFileError):
            validate_file(path, options)
        return
    labels: dict[tuple[str, str], set[str]] = {}
    for c in checked:
        if c.row.identifier_value and c.row.label:
            name = c.row.identifier_name
            labels.setdefault(customer_key(IDENTIFIER_NAMES.get(name.lower(), name), c.row.identifier_value),
                              set()).add(c.row.label)
    first: dict[tuple[str, str], int] = {}
    duplicates: dict[int, int] = {}
    conflicting: set[int] = set()
    for c in checked:
        key = customer_key(c.canonical_name, c.row.identifier_value)
        if c.row.identifier_value and c.row.label and len(labels[customer_key(
                IDENTIFIER_NAMES.get(c.row.identifier_name.lower(), c.row.identifier_name),
                c.row.identifier_value)]) > 1:
            conflicting.add(c.row.number)
            continue
        if c.problems:
            continue
        if key in first:
            duplicates[c.row.number] = first[key]
        else:
            first[key] = c.row.number
    report = validate_file(path, options)
    found = {p.row: int(re.match(r"duplicate of row (\d+)", p.message)[1])  # type: ignore[index]
             for p in report.problems if p.kind == "duplicate"}
    assert found == duplicates
    assert {p.row for p in report.problems if p.kind == "label-conflict"} == conflicting
    assert report.duplicates == len(duplicates)


def test_find_conflicts_grows_past_its_guess_and_many_customers() -> None:
    """The expected row count is only a guess; many customers, each with its own rows."""
    batches = [(start, ["email"] * 100, [f"C{(n - 1) // 2}@example.com" for n in range(start, start + 100)],
                ["Suspended" if n % 4 else "Active" for n in range(start, start + 100)])
               for start in range(1, 5001, 100)]
    found = find_repeats(iter(batches))
    # Rows 3 and 4 are customer 1 (Suspended, Active), 7 and 8 customer 3, ...: every second customer.
    assert len(found) == 1250 and found.rows == 2500
    assert found.rows_with(4) == [3, 4] and found.rows_with(5000) == [4999, 5000] and found.rows_with(1) is None
    assert found.repeated == 5000 and all(found.may_repeat(n) for n in range(1, 5001)) and not found.may_repeat(5001)


@pytest.mark.parametrize(("rows", "listed"), [
    ([2, 9], "rows 2 and 9 give"), ([2, 5, 9], "rows 2, 5 and 9 give"),
    (list(range(1, 9)), "rows 1, 2, 3, 4, 5 and 3 more give"),
])
def test_conflict_message(rows: list[int], listed: str) -> None:
    """The rows are named (the first five), and what to do."""
    assert conflict_message(rows) == (f"{listed} this customer different labels: keep one (delete the others, or "
                                      "give them the same label); nothing is sent for this customer")


# --- validate and run ---------------------------------------------------------------------------------

CASES = [
    ("email", "dup@example.com", "Suspended", "fraud"),  # 1 sent
    ("mobile", "919853464010", "Suspended", "fraud"),  # 2 sent
    ("email", "DUP@example.com", "Suspended", "fraud"),  # 3 duplicate of 1
    ("mobile", "+919853464010", "Suspended", "fraud"),  # 4 duplicate of 2
    ("email", "flip@example.com", "Suspended", "fraud"),  # 5 conflict with 9
    ("cardnumber", "5.07105E+15", "Suspended", "fraud"),  # 6 broken
    ("mobile", "#######", "Suspended", "fraud"),  # 7 broken
    ("cardnumber", "???0042", "Suspended", "fraud"),  # 8 broken
    ("email", "Flip@Example.com", "Active", "fraud"),  # 9 conflict with 5
    ("externalId", "\\N", "Suspended", "fraud"),  # 10 broken
    ("externalId", "NULL", "Suspended", "fraud"),  # 11 broken
    ("externalId", "nan", "Suspended", "fraud"),  # 12 broken
    ("externalId", "A#1", "Suspended", "fraud"),  # 13 sent
    ("email", "what?@example.com", "Suspended", "fraud"),  # 14 sent
]
OUTCOMES = ["submitted", "submitted", "duplicate", "duplicate", "invalid", "invalid", "invalid", "invalid",
            "invalid", "invalid", "invalid", "invalid", "submitted", "submitted"]


def test_validate_lists_near_duplicates_conflicts_and_broken_ids(tmp_path: Path, cli) -> None:
    """validate counts and lists each kind, with the rows and the fix."""
    path = write_csv(tmp_path / "list.csv", CASES)
    result = cli("validate", path, "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    assert (report["valid"], report["invalid"], report["duplicates"]) == (4, 8, 2)
    assert report["counts"] == {"missing-value": 3, "duplicate": 2, "label-conflict": 2, "scientific-notation": 1,
                                "column-too-narrow": 1, "lost-characters": 1}
    problems = {p["row"]: (p["column"], p["kind"], p["message"]) for p in report["problems"]}
    assert problems[3][2].startswith("duplicate of row 1: the same email address (compared in any letter case)")
    assert problems[4][2].startswith("duplicate of row 2: the same mobile number (compared by its digits")
    assert problems[5] == problems[9] == ("label", "label-conflict", conflict_message([5, 9]))
    assert problems[6][1:] == ("scientific-notation", broken_id("cardnumber", "5.07105E+15")[1])  # type: ignore[index]
    assert set(problems) == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}


def test_run_sends_one_request_per_customer_and_none_for_a_contradiction(sim, env, cli, tmp_path):
    """Near-duplicates are not sent again, a customer given two labels not at all, broken ids not at all;
    what reached the simulator is each remaining value as written."""
    path = write_csv(tmp_path / "list.csv", CASES)
    result = cli("run", path)
    assert result.code == 1, result.err
    assert "1 customer(s) are given different labels, in 2 rows: none of those rows is sent" in result.err
    rows = read_csv(result.folder / "results.csv")
    assert [r["outcome"] for r in rows] == OUTCOMES
    assert rows[4]["error"] == rows[8]["error"] == conflict_message([5, 9])
    assert "row 1" in rows[2]["error"] and "row 2" in rows[3]["error"]
    sent = [(r.identifier_name, r.identifier_value, r.label) for r in sim.sim.state.accepted()]
    assert sent == [("email", "dup@example.com", "Suspended"), ("mobile", "919853464010", "Suspended"),
                    ("externalId", "A#1", "Suspended"), ("email", "what?@example.com", "Suspended")]
    fix = read_csv(result.folder / "fix.csv")
    assert [f["row"] for f in fix] == ["5", "6", "7", "8", "9", "10", "11", "12"]
    assert fix[0]["fix"] == conflict_message([5, 9])
    dry = cli("run", path, "--dry-run", "--new-run")  # the same verdicts without sending
    assert [r["outcome"] for r in read_csv(dry.folder / "results.csv")] == [
        "dry-run" if o == "submitted" else o for o in OUTCOMES]


def test_resume_gives_the_same_verdicts(sim, env, cli, tmp_path):
    """A run stopped before the second row of a contradiction (and before a near-duplicate's first row was
    sent) is resumed: the verdicts are those of one whole run, and nothing is sent twice."""
    path = write_csv(tmp_path / "list.csv", CASES)
    first = cli("run", path, "--limit", "1")
    assert first.code == 0, first.err
    assert [r["outcome"] for r in read_csv(first.folder / "results.csv")] == ["submitted"] + ["unprocessed"] * 13
    assert len(sim.sim.state.accepted()) == 1
    second = cli("resume", first.folder)
    assert second.code == 1, second.err
    assert [r["outcome"] for r in read_csv(first.folder / "results.csv")] == OUTCOMES
    assert len(sim.sim.state.accepted()) == 4


def test_rest_gives_the_mapped_columns(tmp_path: Path) -> None:
    """reader.rest() (the stopped run's rest, the pre-pass) gives what iterating gives with --column and
    --identifier-name, which fill in an absent identifierName column and empty cells."""
    path = tmp_path / "in.csv"
    path.write_text("Status,Mobile No,kind\r\nSuspended,919853464010,\r\nActive, +447700900123 ,email\r\n"
                    "\r\nSuspended,919800000001,MOBILE\r\n", encoding="utf-8")
    options = ReadOptions(columns=(("identifierValue", "Mobile No"), ("label", "status"), ("identifierName", "kind")),
                          default_name="mobile", default_reason="fraud")
    with InputReader(path, options) as reader:
        full = [(c.row.number, c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason, 0)
                for chunk in reader for c in chunk]
    for batch in (1, 2, 10):
        with InputReader(path, options) as reader:
            assert [row for rows in reader.rest(0, batch) for row in rows] == full
    assert [r[1] for r in full] == ["mobile", "email", "MOBILE"]
    absent = ReadOptions(columns=(("identifierValue", "Mobile No"),), default_name="mobile", default_label="S",
                         default_reason="r")
    with InputReader(path, absent) as reader:
        first = next(row for rows in reader.rest(0) for row in rows)
    assert first == (1, "mobile", "919853464010", "S", "r", 0)


def test_pending_check_compares_customers_as_the_duplicate_check(sim, env, cli, tmp_path):
    """A request pending for +919853464010 (or DUP@example.com) is that customer's, written either way."""
    first = cli("run", write_csv(tmp_path / "a.csv", [("mobile", "+919853464010", "Suspended", "x"),
                                                      ("email", "DUP@example.com", "Suspended", "x")]))
    assert first.code == 0, first.err
    again = cli("run", write_csv(tmp_path / "b.csv", [("mobile", "919853464010", "Suspended", "x"),
                                                      ("email", "dup@example.com", "Suspended", "x"),
                                                      ("mobile", "00919853464010", "Active", "x")]))
    assert again.code == 1, again.err  # rows 1 and 3: one customer given two labels in this file
    rows = read_csv(again.folder / "results.csv")
    assert [r["outcome"] for r in rows] == ["invalid", "pending-exists", "invalid"]
    again = cli("run", write_csv(tmp_path / "c.csv", [("mobile", "00919853464010", "Suspended", "x")]))
    assert [r["outcome"] for r in read_csv(again.folder / "results.csv")] == ["pending-exists"]
    assert len(sim.sim.state.accepted()) == 2
