"""Round trip: any text in the four columns survives reader -> results.csv -> fix.csv -> reader.

The input file is written in bulkstatus's own CSV form; results.csv and fix.csv are written by the real
Recorder (extra columns around the four). Reading trims spaces around values and
unwraps Excel's ="..." guards, so values already in that normal form come back unchanged, and any
text comes back unchanged from its second reading on (reading is idempotent).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bulkstatus.input.reader import InputReader, ReadOptions
from bulkstatus.input.rules import normalise
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.journal import Recorder, csv_writer

COLUMNS = ["identifierName", "identifierValue", "label", "reason"]

# Any text but NUL (a file holding NUL is refused as not text) and lone surrogates (not encodable).
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12)
# Edge-case characters drawn more often than uniform sampling would.
SPECIAL = st.sampled_from(['"', ",", ";", "\t", "\n", "\r", "\r\n", " ", "\u00a0", "=", '="', "\ufeff", "\u2028",
                           "\x85", "NA", "007", "null"])
VALUE = st.lists(st.one_of(TEXT, SPECIAL), max_size=4).map("".join)
ROWS = st.lists(st.tuples(VALUE, VALUE, VALUE, VALUE), min_size=1, max_size=5)

Values = tuple[str, str, str, str]
# One folder for the whole module: Hypothesis runs each test many times within one tmp_path.
FOLDER = Path(tempfile.mkdtemp(prefix="bulkstatus-roundtrip-"))


def write(path: Path, header: list[str], rows: list[Values]) -> None:
    """An input file in the form bulkstatus writes its own CSV files, with an extra column (so that no
    row is all blank, which the reader skips)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv_writer(f)
        writer.writerow([*header, "note"])
        writer.writerows((*row, "x") for row in rows)


def read(path: Path) -> list[Values]:
    with InputReader(path, ReadOptions()) as reader:
        return [(c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason)
                for chunk in reader for c in chunk]


def through_results_and_failed(rows: list[Values]) -> list[Values]:
    """Rows as read -> the Recorder's results.csv and fix.csv -> reader; both files read the same."""
    folder = Path(tempfile.mkdtemp(dir=FOLDER))
    recorder = Recorder(folder)
    for number, values in enumerate(rows, 1):
        recorder.record(Result(Row(number, *values), Outcome.FAILED, error="x, y"))
    recorder.close()
    from_results = read(folder / "results.csv")
    assert from_results == rows
    return read(folder / "fix.csv")


@settings(max_examples=40, deadline=None)
@given(ROWS.map(lambda rows: [tuple(normalise(v) for v in row) for row in rows]))
def test_values_in_normal_form_survive_unchanged(rows: list[Values]) -> None:
    """Values with no spaces around them and no ="..." guard come back exactly as written."""
    input_file = Path(tempfile.mkdtemp(dir=FOLDER)) / "input.csv"
    write(input_file, COLUMNS, rows)
    assert through_results_and_failed(read(input_file)) == rows


@settings(max_examples=40, deadline=None)
@given(ROWS)
def test_reading_is_idempotent(rows: list[Values]) -> None:
    """Whatever text a file holds, writing what was read and reading it again changes nothing."""
    first = FOLDER / "first.csv"
    write(first, COLUMNS, rows)
    once = read(first)
    assert through_results_and_failed(once) == once
    assert once == [tuple(normalise(v) for v in row) for row in rows]
