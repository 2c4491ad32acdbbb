"""`bulkstatus validate`: read a whole file as a run would, send nothing, and report every problem.

`validate_file` does the reading; `render_text` and `render_json` are pure and return what the CLI
prints. InputFileError propagates (the CLI turns it into exit status 2).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bulkstatus.input.duplicates import DuplicateIndex, customer_key, duplicate_message
from bulkstatus.input.reader import InputReader, ReadOptions, collector_paused
from bulkstatus.input.repeats import Repeats, find_repeats
from bulkstatus.input.rules import PROBLEM_KINDS, CheckedRow

__all__ = ["MAX_LISTED", "Problem", "ValidationReport", "render_json", "render_text", "validate_file"]

# Problems and notes listed one by one; beyond this they are only counted, so that validating a
# million broken rows does not hold a million messages in memory (fix the first ones and run again).
MAX_LISTED = 10_000
_DEFAULT_OPTIONS = ReadOptions()


@dataclass(frozen=True, slots=True)
class Problem:
    row: int  # 1-based data row number, as in results.csv
    column: str  # identifierName, identifierValue, label, reason, or "row" for the row's shape
    kind: str  # a key of checks.PROBLEM_KINDS, or "note"
    message: str  # what is wrong and how to fix it


@dataclass
class ValidationReport:
    path: str
    encoding: str = ""
    delimiter: str = ""
    columns: list[str] = field(default_factory=list)
    rows: int = 0  # data rows read; blank rows are not rows
    valid: int = 0
    invalid: int = 0  # rows a run would record as `invalid`
    duplicates: int = 0  # otherwise valid rows a run would record as `duplicate`
    skipped_empty_rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # problems per kind, all of them
    problems: list[Problem] = field(default_factory=list)  # at most MAX_LISTED
    notes: list[Problem] = field(default_factory=list)  # at most MAX_LISTED
    unlisted_problems: int = 0
    unlisted_notes: int = 0
    sheet: str | None = None  # the sheet read, for a workbook (encoding is then its kind, delimiter "")

    @property
    def ok(self) -> bool:
        """True when a run would send every row (duplicates allowed, as for `run`'s exit status 0)."""
        return self.invalid == 0

    def add(self, checked: CheckedRow, earlier: int | None) -> None:
        """Count one row; `earlier` is the row it duplicates (only looked up for valid rows)."""
        self.rows += 1
        if earlier is None and not checked.problems and not checked.notes:
            self.valid += 1  # nearly every row of a large file: keep it cheap
            return
        number = checked.row.number
        found = [Problem(number, column, kind, message)
                 for (column, kind), message in zip(checked.kinds, checked.problems, strict=True)]
        if found:
            self.invalid += 1
        elif earlier is not None:
            self.duplicates += 1
            message = duplicate_message(earlier, checked.canonical_name)
            found = [Problem(number, "identifierValue", "duplicate", message)]
        else:
            self.valid += 1
        for problem in found:
            self.counts[problem.kind] += 1
        room = MAX_LISTED - len(self.problems)
        self.problems.extend(found[:room])
        self.unlisted_problems += max(0, len(found) - room)
        for note in checked.notes:
            if len(self.notes) < MAX_LISTED:
                self.notes.append(Problem(number, "row", "note", note))
            else:
                self.unlisted_notes += 1


def validate_file(path: str | Path, options: ReadOptions = _DEFAULT_OPTIONS) -> ValidationReport:
    """Read the whole file with the run's reader and duplicate check; nothing is sent."""
    index = DuplicateIndex()
    with InputReader(path, options) as reader:
        report = ValidationReport(str(path), reader.encoding, reader.delimiter, list(reader.columns),
                                  sheet=reader.sheet)
        with collector_paused():
            repeats = find_repeats(reader.rest_columns())
        for chunk in reader:
            if repeats:
                _add_conflicts(chunk, repeats)
            # Only a row whose customer appears again can be a duplicate (as in a run).
            valid = [c for c in chunk if not c.problems and repeats.may_repeat(c.row.number)]
            earlier = index.check_many([customer_key(c.canonical_name, c.row.identifier_value) for c in valid],
                                       [c.row.number for c in valid])
            duplicates = {c.row.number: e for c, e in zip(valid, earlier, strict=True) if e is not None}
            for checked in chunk:
                report.add(checked, duplicates.get(checked.row.number))
        report.skipped_empty_rows = reader.skipped_empty_rows
    return report


def _add_conflicts(chunk: list[CheckedRow], conflicts: Repeats) -> None:
    """A row of a customer given different labels is invalid too (as a run records it)."""
    for checked in chunk:
        clash = conflicts.message(checked.row.number)
        if clash is not None:
            checked.problems.append(clash)
            checked.kinds.append(("label", "label-conflict"))


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def render_text(report: ValidationReport) -> str:
    """Counts per problem kind, then each problem with row number, column and fix."""
    layout = (f'{report.encoding}, sheet "{report.sheet}"' if report.sheet is not None
              else f"{report.encoding}, {_delimiter_name(report.delimiter)}-delimited")
    lines = [
        f"{report.path}: {_rows(report.rows)}: {report.valid} valid, {report.invalid} invalid, "
        f"{report.duplicates} duplicate ({layout})"
    ]
    if report.skipped_empty_rows:
        lines.append(f"{_rows(report.skipped_empty_rows)} with every cell empty skipped")
    if report.counts:
        width = len(str(max(report.counts.values())))
        lines += ["", "Problems:"]
        lines += [f"  {n:>{width}}  {PROBLEM_KINDS.get(kind, kind)}" for kind, n in report.counts.most_common()]
    if report.problems:
        width = max(len("row"), len(str(report.problems[-1].row)))
        columns = max(len(p.column) for p in report.problems)
        lines += ["", f"{'row':>{width}}  {'column':<{columns}}  problem and fix"]
        lines += [f"{p.row:>{width}}  {p.column:<{columns}}  {p.message}" for p in report.problems]
        if report.unlisted_problems:
            lines.append(f"... and {report.unlisted_problems} more problems not listed; fix these and "
                         "validate again")
    if report.notes:
        lines += ["", "Notes (nothing to fix):"]
        lines += [f"  row {n.row}: {n.message}" for n in report.notes]
        if report.unlisted_notes:
            lines.append(f"  ... and {report.unlisted_notes} more notes")
    if report.ok:
        skipped = " (duplicates are skipped)" if report.duplicates else ""
        lines += ["", f"OK: every row can be sent{skipped}."]
    else:
        lines += ["", f"{_rows(report.invalid)} would be recorded as invalid and not sent; fix them and "
                  "validate again."]
    return "\n".join(lines)


def render_json(report: ValidationReport) -> str:
    """The report as one JSON object, for pipelines."""
    return json.dumps(
        {
            "path": report.path,
            "encoding": report.encoding,
            "delimiter": report.delimiter,
            "columns": report.columns,
            "sheet": report.sheet,
            "rows": report.rows,
            "valid": report.valid,
            "invalid": report.invalid,
            "duplicates": report.duplicates,
            "skipped_empty_rows": report.skipped_empty_rows,
            "ok": report.ok,
            "counts": dict(report.counts.most_common()),
            "problems": [asdict(p) for p in report.problems],
            "unlisted_problems": report.unlisted_problems,
            "notes": [{"row": n.row, "message": n.message} for n in report.notes],
            "unlisted_notes": report.unlisted_notes,
        },
        ensure_ascii=False,
        indent=2,
    )
