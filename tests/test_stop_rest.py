"""The rest of a stopped run, recorded in bulk: the same rows, numbers and values as the full reader gives,
and the same bytes in results.csv and retry.csv as the row-by-row recorder writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from corpus_cases import CORPUS, Case

from bulkstatus.input.reader import InputReader, ReadOptions
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.journal import FIX, RESULTS, RETRY, Recorder

READABLE = [c for c in CORPUS if c.fatal is None]
TRICKY = (b"identifierName,identifierValue,label,reason\n"
          b"mobile,+919800000001,Suspended,plain\n"
          b" email , a@b.example ,Suspended,  spaces around  \n"
          b",,,\n"
          b"email,c@d.example\xc2\xa0,Suspended,trailing spaces only  \n"
          b"\n"
          b'cardnumber,="00123",Suspended,"comma, and ""quotes"""\n'
          b'externalId,@list,,"line\nbreak"\n'
          b"mobile,-1,Suspended,=HYPERLINK(\"http://x\")\n"
          b"mobile,919800000002\n"
          b"mobile,919800000003,Suspended,too,many,cells\n")


def rows_read(path: Path, options: ReadOptions) -> list[tuple[int, str, str, str, str, int]]:
    with InputReader(path, options) as reader:
        return [(c.row.number, c.row.identifier_name, c.row.identifier_value, c.row.label, c.row.reason,
                 c.row.origin) for chunk in reader for c in chunk]

# A retry.csv fed back in: the sourceRow column gives each row its origin (empty, or not a number: none).
WITH_SOURCE = (b"identifierName,identifierValue,label,reason,sourceRow,row,outcome,error\r\n"
               b"mobile,919800000001,Suspended,plain,101,1,unprocessed,x\r\n"
               b'mobile,919800000002,Suspended,"a, b", 7 ,2,unprocessed,x\r\n'
               b"mobile,919800000003,Suspended,plain,,3,unprocessed,x\r\n"
               b"\r\n"
               b"mobile,919800000004,Suspended,plain,abc,4,unprocessed,x\r\n"
               b'mobile,919800000005,Suspended,plain,="0042",5,unprocessed,x\r\n'
               b"mobile,919800000006,Suspended,plain\r\n")


@pytest.mark.parametrize("case", [*READABLE, Case("tricky.csv", TRICKY, options={"default_label": "Fraud"}),
                                  Case("with_source.csv", WITH_SOURCE)], ids=lambda c: c.name)
def test_rest_gives_what_the_reader_gives(case: Case, tmp_path: Path) -> None:
    """Every readable corpus file (and a tricky one): rest(0) and rest(k) give the reader's rows from k+1 on
    (values of rows with too many or too few cells aside: those are invalid when read, unprocessed here)."""
    path = tmp_path / case.name
    path.write_bytes(case.data)
    options = ReadOptions(**case.options)
    full = rows_read(path, options)
    with InputReader(path, options) as reader:
        rest = [row for batch in reader.rest(0) for row in batch]
    assert [r[0] for r in rest] == [r[0] for r in full]
    with InputReader(path, options) as reader:
        odd = {c.row.number for chunk in reader for c in chunk
               if any(k in ("too-many-cells", "too-few-cells", "shape") for k, _ in c.kinds)}
    assert [r for r in rest if r[0] not in odd] == [r for r in full if r[0] not in odd]
    # Small blocks, so that blocks without the header take the whole-block path (_as_they_are) too.
    for size in (1, 2, 3):
        for after in {0, 2, len(full) - 1}:
            with InputReader(path, options) as reader:
                assert [row for batch in reader.rest(after, batch=size) for row in batch] == rest[after:]
            # rest_columns() (the pre-pass of repeats.py): the same rows, a column at a time.
            with InputReader(path, options) as reader:
                columns = [(first + i, *cells) for first, *block in reader.rest_columns(after, batch=size)
                           for i, cells in enumerate(zip(*block, strict=True))]
            assert columns == [row[:4] for row in rest[after:]]


# Cells of each kind the bulk path tells apart: plain, quoted by the writer (comma, quote, CR, LF),
# guarded as a formula (at the start, or after a LF inside a reason), in each column.
KINDS = [
    ("mobile", "919800000001", "Suspended", "plain"),
    ("mobile", "919800000002", "Suspended", "comma, in reason"),
    ("mobile", "919800000003", "Suspended", 'a "quoted" reason'),
    ("mobile", "919800000004", "Suspended", "line\nbreak"),
    ("mobile", "919800000005", "Suspended", "carriage\rreturn"),
    ("mobile", "919800000006", "Suspended", "=HYPERLINK(\"http://x\")"),
    ("mobile", "919800000007", "Suspended", "line\n=formula after a break"),
    ("mobile", "919800000008", "Suspended", "\tstarts with a tab"),
    ("mobile", "+919800000009", "Suspended", "plus mobile"),
    ("email", "@list", "Suspended", "at sign"),
    ("mobile", "919800000010", "Sus,pended", "comma in label"),
    ("mo\"bile", "919800000011", "Suspended", "quote in name"),
    ("mobile", "-12", "Suspended", "minus, and a comma"),
    ("mobile", "919800000013", "Suspended", "plain again"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, len(KINDS)])
def test_bulk_unprocessed_writes_the_recorders_bytes(size: int, tmp_path: Path) -> None:
    """The same rows through record() one by one and through unprocessed() in batches of ``size``: the
    same results.csv and retry.csv but for the time stamp (so each kind of cell goes through the bulk
    path alone and beside every other), the rows of a re-run (a sourceRow) and of an original file alike."""
    rows = [(number, *cells, 100 + number if number % 3 else 0) for number, cells in enumerate(KINDS, start=1)]
    error = "not sent: the run stopped before this row"
    one, bulk = tmp_path / "one", tmp_path / "bulk"
    slow = Recorder(one)
    for row in rows:
        slow.record(Result(Row(*row), Outcome.UNPROCESSED, error=error, finished_at="T"))
    slow.close()
    fast = Recorder(bulk)
    for start in range(0, len(rows), size):
        fast.unprocessed(rows[start:start + size], error, "in doubt")
    fast.close()
    assert (bulk / RETRY).read_bytes() == (one / RETRY).read_bytes()
    assert (bulk / FIX).read_bytes() == (one / FIX).read_bytes()
    assert fast.redo == slow.redo == {"retry": len(rows)}
    stamp = re.compile(rb",[0-9T:.Z-]+\r\n")  # each line's finishedAt, the last cell
    got, expected = (bulk / RESULTS).read_bytes(), (one / RESULTS).read_bytes()
    assert stamp.sub(b",T\r\n", got) == expected and got.count(b"\r\n") == expected.count(b"\r\n")
