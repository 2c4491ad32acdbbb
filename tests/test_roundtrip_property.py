"""Round trip: any text in the four columns survives reader -> results.csv -> failed.csv -> reader.

The files are written as the results writer writes them: Python's csv.writer, default dialect,
UTF-8, "\\n" line endings, extra columns around the four. Reading trims spaces around values and
unwraps Excel's ="..." guards, so values already in that normal form come back unchanged, and any
text comes back unchanged from its second reading on (reading is idempotent).
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bulkstatus.checks import normalise
from bulkstatus.reader import InputReader, ReadOptions

COLUMNS = ["identifierName", "identifierValue", "label", "reason"]
RESULTS = ["row", *COLUMNS, "outcome", "requestId", "state", "httpStatus", "errorCode", "error", "attempts",
           "finishedAt"]
FAILED = [*COLUMNS, "row", "outcome", "error"]

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
    """Write rows in the writer's shape: results.csv or failed.csv columns.

    With lineterminator "\n", Python 3.11's csv.writer does not quote a value holding a bare "\r",
    and every CSV reader takes that "\r" for the end of the row. A row holding one must be written with
    every field quoted; the results writer has to do the same for this round trip to hold."""
    with path.open("w", encoding="utf-8", newline="") as f:
        plain = csv.writer(f, lineterminator="\n")
        quoted = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
        plain.writerow(header)
        for number, values in enumerate(rows, 1):
            cells = dict(zip(COLUMNS, values, strict=True), row=str(number), outcome="failed", error="x, y")
            line = [cells.get(name, "") for name in header]
            (quoted if any("\r" in cell for cell in line) else plain).writerow(line)


def read(path: Path) -> list[Values]:
    with InputReader(path, ReadOptions()) as reader:
        return [(c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason)
                for chunk in reader for c in chunk]


def through_results_and_failed(rows: list[Values]) -> list[Values]:
    """reader -> results.csv -> reader -> failed.csv -> reader, starting from rows as written."""
    results, failed = FOLDER / "results.csv", FOLDER / "failed.csv"
    write(results, RESULTS, rows)
    write(failed, FAILED, read(results))
    return read(failed)


@settings(max_examples=40, deadline=None)
@given(ROWS.map(lambda rows: [tuple(normalise(v) for v in row) for row in rows]))
def test_values_in_normal_form_survive_unchanged(rows: list[Values]) -> None:
    """Values with no spaces around them and no ="..." guard come back exactly as written."""
    assert through_results_and_failed(rows) == rows


@settings(max_examples=40, deadline=None)
@given(ROWS)
def test_reading_is_idempotent(rows: list[Values]) -> None:
    """Whatever text a file holds, writing what was read and reading it again changes nothing."""
    first = FOLDER / "first.csv"
    write(first, RESULTS, rows)
    once = read(first)
    assert through_results_and_failed(once) == once
    assert once == [tuple(normalise(v) for v in row) for row in rows]
