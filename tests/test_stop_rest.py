"""The rest of a stopped run, recorded in bulk: the same rows, numbers and values as the full reader gives,
and the same bytes in results.csv and failed.csv as the row-by-row recorder writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from corpus_cases import CORPUS, Case

from bulkstatus.input.reader import InputReader, ReadOptions
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.journal import FAILED, RESULTS, Recorder

READABLE = [c for c in CORPUS if c.fatal is None]
TRICKY = (b"identifierName,identifierValue,label,reason\n"
          b"mobile,+919800000001,Suspended,plain\n"
          b" email , a@b.example ,Suspended,  spaces around  \n"
          b",,,\n"
          b"\n"
          b'cardnumber,="00123",Suspended,"comma, and ""quotes"""\n'
          b'externalId,@list,,"line\nbreak"\n'
          b"mobile,-1,Suspended,=HYPERLINK(\"http://x\")\n"
          b"mobile,919800000002\n"
          b"mobile,919800000003,Suspended,too,many,cells\n")


def rows_read(path: Path, options: ReadOptions) -> list[tuple[int, str, str, str, str]]:
    with InputReader(path, options) as reader:
        return [(c.row.number, c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason)
                for chunk in reader for c in chunk]


@pytest.mark.parametrize("case", [*READABLE, Case("tricky.csv", TRICKY, options={"default_label": "Fraud"})],
                         ids=lambda c: c.name)
def test_rest_gives_what_the_reader_gives(case: Case, tmp_path: Path) -> None:
    """Every readable corpus file (and a tricky one): rest(0) and rest(k) give the reader's rows from k+1 on
    (values of rows with too many or too few cells aside: those are invalid when read, unprocessed here)."""
    path = tmp_path / case.name
    path.write_bytes(case.data)
    options = ReadOptions(**case.options)
    full = rows_read(path, options)
    with InputReader(path, options) as reader:
        rest = list(reader.rest(0))
    assert [r[0] for r in rest] == [r[0] for r in full]
    with InputReader(path, options) as reader:
        odd = {c.row.number for chunk in reader for c in chunk
               if any(k in ("too-many-cells", "too-few-cells", "shape") for k, _ in c.kinds)}
    assert [r for r in rest if r[0] not in odd] == [r for r in full if r[0] not in odd]
    if len(full) > 2:
        with InputReader(path, options) as reader:
            assert list(reader.rest(2)) == rest[2:]


def test_bulk_unprocessed_writes_the_recorders_bytes(tmp_path: Path) -> None:
    """The same rows through record() one by one and through unprocessed(): the same results.csv and
    failed.csv but for the time stamp (batches that take the hand-joined path and ones that do not)."""
    path = tmp_path / "tricky.csv"
    path.write_bytes(TRICKY * 1 + b"\n".join(b"mobile,9198%08d,Suspended,bulk %d" % (i, i) for i in range(50)))
    rows = rows_read(path, ReadOptions(default_label="Fraud"))
    error = "not sent: the run stopped before this row"
    one, bulk = tmp_path / "one", tmp_path / "bulk"
    slow = Recorder(one)
    for number, *values in rows:
        slow.record(Result(Row(number, *values), Outcome.UNPROCESSED, error=error, finished_at="T"))
    slow.close()
    fast = Recorder(bulk)
    fast.unprocessed(rows[:8], error, "in doubt")  # the tricky ones: row by row
    fast.unprocessed(rows[8:], error, "in doubt")  # plain: joined by hand
    fast.close()
    assert (bulk / FAILED).read_bytes() == (one / FAILED).read_bytes()
    stamp = re.compile(rb",[0-9T:.Z-]+\r\n")  # each line's finishedAt, the last cell
    got, expected = (bulk / RESULTS).read_bytes(), (one / RESULTS).read_bytes()
    assert stamp.sub(b",T\r\n", got) == expected and got.count(b"\r\n") == expected.count(b"\r\n")
