"""Their column names: --column FIELD=HEADER, [columns] in the config file, --identifier-name; every header
problem in one message. The pure parts as tables, the rest through the CLI against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_csv, write_csv

from bulkstatus.errors import ConfigError, InputFileError
from bulkstatus.input.columns import match_header, parse_columns, parse_identifier_name

NO_DEFAULTS: dict[str, str | None] = {}
ALL_DEFAULTS = {"identifierName": "mobile", "label": "Suspended", "reason": "fraud"}


@pytest.mark.parametrize(("value", "expected"), [
    (["identifierValue=Mobile No"], {"identifierValue": "Mobile No"}),
    (["identifier_value=Mobile No", "LABEL= Status "], {"identifierValue": "Mobile No", "label": "Status"}),
    ("identifierValue=Mobile No;reason=Why, in words", {"identifierValue": "Mobile No", "reason": "Why, in words"}),
    ({"identifierValue": "a=b"}, {"identifierValue": "a=b"}),  # (the first = splits a flag; a table has none)
    (["identifierValue=x=y"], {"identifierValue": "x=y"}),
    ({}, {}),
    ("", {}),
])
def test_parse_columns(value: object, expected: dict[str, str]) -> None:
    """Flags, the variable (; between entries) and a table give the same mapping; fields in any spelling."""
    assert parse_columns(value, "--column") == expected


@pytest.mark.parametrize(("value", "message"), [
    (["identifierValu=Mobile No"], '--column: "identifierValu" is not a field (did you mean identifierValue?)'),
    (["mobile=Mobile No"], '--column: "mobile" is not a field; the fields are identifierName, identifierValue'),
    (["Mobile No"], '--column "Mobile No" is not FIELD=HEADER: write e.g. identifierValue="Mobile No"'),
    (["label="], "--column: the header for label is empty"),
    (["label=A", "label=B"], "--column: label is given twice; keep one"),
    (["label=Status", "reason=status"], '--column: label and reason both name the column "status"'),
])
def test_parse_columns_refuses(value: object, message: str) -> None:
    """Each mistake is one line that says what to write instead."""
    with pytest.raises(ConfigError) as caught:
        parse_columns(value, "--column")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("value", "expected"), [
    ("mobile", "mobile"), ("EMAIL", "email"), (" externalid ", "externalId"),
])
def test_parse_identifier_name(value: str, expected: str) -> None:
    """Any letter case; the documented spelling comes back."""
    assert parse_identifier_name(value, "--identifier-name") == expected


def test_parse_identifier_name_suggests() -> None:
    """An unknown name gets rules.py's did-you-mean."""
    with pytest.raises(ConfigError, match=r'^--identifier-name: identifierName "phone" .*\(did you mean "mobile"\?\)'):
        parse_identifier_name("phone", "--identifier-name")


@pytest.mark.parametrize(("header", "mapping", "defaults", "expected"), [
    (["identifierName", "identifierValue", "label", "reason"], {}, NO_DEFAULTS,
     {"identifierName": 0, "identifierValue": 1, "label": 2, "reason": 3}),
    (["Mobile No"], {"identifierValue": "Mobile No"}, ALL_DEFAULTS, {"identifierValue": 0}),
    (["Reason", "mobile_no", "Status"], {"identifierValue": "Mobile No", "label": "status"},
     {"identifierName": "mobile"}, {"identifierValue": 1, "label": 2, "reason": 0}),
    # A mapped cell is not also taken by its own name: "reason" holds the label here, "Why" the reason.
    (["identifierName", "identifierValue", "reason", "Why"], {"label": "reason", "reason": "Why"}, NO_DEFAULTS,
     {"identifierName": 0, "identifierValue": 1, "label": 2, "reason": 3}),
    # A file we wrote (retry.csv, fix.csv) has our own names: they stand in for mapped headers it lacks.
    (["identifierName", "identifierValue", "label", "reason", "sourceRow", "row", "outcome", "error"],
     {"identifierValue": "Mobile No"}, {"identifierName": "mobile"},
     {"identifierName": 0, "identifierValue": 1, "label": 2, "reason": 3, "sourceRow": 4}),
])
def test_match_header(header: list[str], mapping: dict[str, str], defaults: dict[str, str | None],
                      expected: dict[str, int]) -> None:
    """Where each field is, by the user's header or our own name."""
    assert match_header(Path("in.csv"), header, mapping, defaults) == expected


@pytest.mark.parametrize(("header", "mapping", "defaults", "parts"), [
    # Every problem in one message, in field order, each with its did-you-mean.
    (["identifer_name", "identifier value x", "Labl"], {}, NO_DEFAULTS, [
        'in.csv: column identifierName is missing (did you mean "identifer_name"? rename it to identifierName, '
        'or pass --column identifierName="identifer_name")',
        'column identifierValue is missing (did you mean "identifier value x"?',
        'column label is missing (did you mean "Labl"? rename it to label, or pass --column label="Labl")',
        "column reason is missing and no default reason is set; add a reason column or pass --reason",
        "found columns: identifer_name, identifier value x, Labl; expected: identifierName, identifierValue",
    ]),
    (["Mobile No"], {}, {"label": "S", "reason": "r"}, [
        'column identifierValue is missing ("Mobile No" looks like a column of mobile values: pass '
        '--column identifierValue="Mobile No" --identifier-name mobile)',
    ]),
    (["Mobil No", "Reasn", "Status"], {"identifierValue": "Mobile Number", "reason": "Reason", "label": "Status"},
     NO_DEFAULTS, [
        "column identifierName is missing; add an identifierName column, or pass --identifier-name mobile when "
        "every row has the same kind",
        'column "Mobile Number" (--column identifierValue) is not in the header (did you mean "Mobil No"?)',
        'column "Reason" (--column reason) is not in the header (did you mean "Reasn"?)',
     ]),
    # A mapped column that is not there is named even when a default could stand in for it.
    (["identifierName", "identifierValue"], {"label": "Status"}, ALL_DEFAULTS,
     ['column "Status" (--column label) is not in the header']),
    (["identifierName", "identifierValue", "label", "Label", "reason"], {}, NO_DEFAULTS,
     ['column label appears twice ("label" and "Label"); remove or rename one']),
    (["919853464010"], {}, {"identifierName": "mobile"},
     ['has no header row (the first line "919853464010" looks like data); add the line identifierValue at the '
      "top and pass --identifier-name mobile"]),
    (["a@example.com"], {}, NO_DEFAULTS, ["add the line identifierValue at the top and pass --identifier-name email"]),
    (["email", "a@example.com"], {}, NO_DEFAULTS, ["has no header row", "add the line identifierName,identifierValue"]),
    # A lone column named for a kind is a header, not data.
    (["mobile"], {}, NO_DEFAULTS,
     ['"mobile" looks like a column of mobile values: pass --column identifierValue="mobile" '
      "--identifier-name mobile"]),
])
def test_match_header_names_every_problem(header: list[str], mapping: dict[str, str],
                                          defaults: dict[str, str | None], parts: list[str]) -> None:
    """One line; each part of it is there."""
    with pytest.raises(InputFileError) as caught:
        match_header(Path("in.csv"), header, mapping, defaults)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("in.csv: ")
    for part in parts:
        assert part in message


# --- through the CLI ----------------------------------------------------------------------------------

MOBILES = "Mobile No\r\n919853464010\r\n+447700900123\r\n 919800000001 \r\n"


def test_a_list_of_mobile_numbers_runs_as_it_is(sim, env, cli, tmp_path):
    """One column "Mobile No", no identifierName: --column and --identifier-name; sent as written; the run's
    retry.csv and fix.csv have our names and run again, with the same flags or without."""
    path = tmp_path / "mobiles.csv"
    path.write_text(MOBILES + "NULL\r\n", encoding="utf-8")
    flags = ["--column", "identifierValue=Mobile No", "--identifier-name", "mobile", "--label", "Suspended",
             "--reason", "fraud ring"]
    checked = cli("validate", path, *flags)
    assert checked.code == 1, checked.err
    assert checked.out.splitlines()[0] == f"{path}: 4 rows: 3 valid, 1 invalid, 0 duplicate (utf-8, comma-delimited)"
    result = cli("run", path, *flags, "--limit", "2")
    assert result.code == 0, result.err  # (the rows a limit left do not make it 1)
    stored = [(r.identifier_name, r.identifier_value, r.label, r.reason) for r in sim.sim.state.accepted()]
    assert stored == [("mobile", "919853464010", "Suspended", "fraud ring"),
                      ("mobile", "+447700900123", "Suspended", "fraud ring")]
    rows = read_csv(result.folder / "results.csv")
    assert [(r["identifierName"], r["identifierValue"], r["outcome"]) for r in rows] == [
        ("mobile", "919853464010", "submitted"), ("mobile", '="+447700900123"', "submitted"),  # (cells.py)
        ("mobile", "919800000001", "unprocessed"), ("mobile", "NULL", "unprocessed")]
    # The stored mapping holds for resume (no flags now): row 4 is found broken, row 3 sent.
    resumed = cli("resume", result.folder)
    assert resumed.code == 1, resumed.err
    rows = read_csv(result.folder / "results.csv")
    assert [r["outcome"] for r in rows] == ["submitted", "submitted", "submitted", "invalid"]
    assert len(sim.sim.state.accepted()) == 3
    fix = read_csv(result.folder / "fix.csv")
    assert [(f["identifierName"], f["identifierValue"], f["label"], f["reason"], f["sourceRow"]) for f in fix] == [
        ("mobile", "NULL", "Suspended", "fraud ring", "4")]
    # fix.csv runs with the flags of the first run (its own column names stand in) and without them.
    for again in (cli("validate", result.folder / "fix.csv", *flags), cli("validate", result.folder / "fix.csv")):
        assert again.code == 1 and "1 row: 0 valid, 1 invalid" in again.out, again.err


def test_columns_table_in_the_config_file(sim, env, cli, tmp_path):
    """[columns] maps the headers of a database export; a profile's own table replaces it; the variable too."""
    path = write_csv(tmp_path / "export.csv", [("mobile", "919853464010", "Suspended", "fraud")],
                     header=("id_type", "customer_mobile", "new_status", "why"))
    (tmp_path / "bulkstatus.toml").write_text(
        '[columns]\nidentifierName = "id_type"\nidentifierValue = "customer_mobile"\nlabel = "new_status"\n'
        'reason = "why"\n[profiles.other.columns]\nidentifierValue = "msisdn"\n', encoding="utf-8")
    assert cli("validate", path).code == 0
    result = cli("run", path)
    assert result.code == 0, result.err
    assert [(r.identifier_value, r.label) for r in sim.sim.state.accepted()] == [("919853464010", "Suspended")]
    other = cli("validate", path, "--profile", "other")
    assert other.code == 2 and 'column "msisdn" (--column identifierValue) is not in the header' in other.err
    (tmp_path / "bulkstatus.toml").unlink()
    missing = cli("validate", path)
    assert missing.code == 2 and "column identifierName is missing" in missing.err
    assert "column identifierValue is missing" in missing.err and "column reason is missing" in missing.err


def test_column_variable_and_bad_values(sim, env, cli, tmp_path, monkeypatch):
    """BULKSTATUS_COLUMN takes FIELD=HEADER;...; a bad mapping or identifier name is exit 2 before anything."""
    path = tmp_path / "mobiles.csv"
    path.write_text(MOBILES, encoding="utf-8")
    monkeypatch.setenv("BULKSTATUS_COLUMN", "identifierValue=Mobile No")
    monkeypatch.setenv("BULKSTATUS_IDENTIFIER_NAME", "Mobile")
    assert cli("validate", path, "--label", "S", "--reason", "r").code == 0
    bad = cli("run", path, "--label", "S", "--reason", "r", "--column", "value=Mobile No")
    assert bad.code == 2 and '--column: "value" is not a field' in bad.err
    monkeypatch.setenv("BULKSTATUS_IDENTIFIER_NAME", "msisdn")
    bad = cli("run", path, "--label", "S", "--reason", "r")
    assert bad.code == 2 and 'BULKSTATUS_IDENTIFIER_NAME: identifierName "msisdn"' in bad.err
    assert sim.sim.state.create_calls == 0
