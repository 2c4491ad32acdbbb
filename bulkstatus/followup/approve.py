"""The checker's side: approve or reject a run's pending requests, each decision recorded.

Two steps, so that the CLI can ask for confirmation in between: ``plan`` reads the run's submitted
requests (optionally only those listed in a CSV) and looks up their states, keeping those still
``AdminTask``; ``decide`` sends one decision per request, paced and retried like a run, and appends each
decision and its answer to ``approvals.csv`` as it comes. Its ``outcome`` column keeps the decisions the
API made (``decided``, ``state`` saying where the request ended) apart from those it did not: ``refused``
(an error answer: 403 with code 4000, the maker deciding their own request or a user without
CanCheckRequest; 400, the request no longer pending; 404), ``not-applied`` (a 200 whose request is still
pending), ``no-answer`` and ``in-doubt``. A refusal does not stop the others; only credentials the API
keeps refusing (401) stop the batch.

Only ``submitted`` rows are decided: a ``pending-exists`` row points at a request an earlier run made,
which is decided from that run's folder.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkstatus.api.calls import Caller, open_caller
from bulkstatus.api.listing import PENDING, current_states, for_each, window_start
from bulkstatus.errors import InputFileError, RunAborted, RunFolderError
from bulkstatus.input.rules import normalise
from bulkstatus.model import Outcome, canonical_name
from bulkstatus.run.cells import spreadsheet_safe
from bulkstatus.run.folder import Manifest
from bulkstatus.run.journal import RESULTS, csv_writer
from bulkstatus.settings import Settings
from bulkstatus.timestamps import stamp_ms

APPROVALS = "approvals.csv"
APPROVAL_COLUMNS = ("requestId", "row", "identifierName", "identifierValue", "decision", "outcome", "httpStatus",
                    "state", "errorCode", "error", "decidedAt")
# approvals.csv as written before the outcome column; such a file is given the column on the next approve.
_OLD_COLUMNS = tuple(c for c in APPROVAL_COLUMNS if c != "outcome")
DECIDED, REFUSED, NOT_APPLIED, NO_ANSWER, IN_DOUBT = "decided", "refused", "not-applied", "no-answer", "in-doubt"
DECISIONS = ("approved", "rejected")
# The states a request may end in after each decision ("failed": approved, then the change itself failed).
_ENDS = {"approved": frozenset({"approved", "failed"}), "rejected": frozenset({"rejected"})}


@dataclass(frozen=True, slots=True)
class Target:
    request_id: str
    row: str
    identifier_name: str
    identifier_value: str


@dataclass
class Plan:
    folder: Path
    pending: list[Target]
    others: Counter[str]  # requests not decided, by their current state
    unmatched_only: int = 0  # rows of the --only file that match no submitted request of the run
    calls: int = 0


@dataclass
class ApproveReport:
    accepted: int = 0
    refused: int = 0
    aborted: str | None = None
    counts: Counter[str] = field(default_factory=Counter)  # decisions by state, the others by outcome
    refused_by_status: Counter[int] = field(default_factory=Counter)  # REFUSED answers by HTTP status
    calls: int = 0


def read_only_file(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The requestIds, or else the (identifierName, identifierValue) pairs, listed in ``path``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [cell.strip().lower() for cell in next(reader, [])]
            if "requestid" in header:
                at = header.index("requestid")
                return {row[at].strip() for row in reader if len(row) > at and row[at].strip()}, set()
            if "identifiername" in header and "identifiervalue" in header:
                name_at, value_at = header.index("identifiername"), header.index("identifiervalue")
                # As the run read them: an input's `="00123"` and results.csv's `="+91..."` are the values inside.
                return set(), {(canonical_name(normalise(row[name_at])), normalise(row[value_at])) for row in reader
                               if len(row) > max(name_at, value_at)}
    except OSError as exc:
        raise InputFileError(f"--only: cannot read {str(path)!r} ({exc.strerror}): check the path") from None
    except UnicodeDecodeError:
        raise InputFileError(f"--only: {str(path)!r} is not UTF-8 text: save it as CSV UTF-8") from None
    raise InputFileError(f"--only: {str(path)!r} has neither a requestId column nor identifierName and "
                         "identifierValue columns: give results.csv rows or the input rows to decide")


def read_targets(folder: Path, only: Path | None) -> tuple[list[Target], int]:
    """The run's submitted requests (those of ``only`` when given) and how many ``only`` rows matched none."""
    ids, pairs = read_only_file(only) if only is not None else (set(), set())
    targets: list[Target] = []
    matched_ids: set[str] = set()
    matched_pairs: set[tuple[str, str]] = set()
    path = folder / RESULTS
    if not path.is_file():
        raise RunFolderError(f"{str(folder)!r} has no {RESULTS}: give the folder a run printed as its last line")
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            request_id = row.get("requestId") or ""
            if row.get("outcome") != Outcome.SUBMITTED or not request_id:
                continue
            pair = (canonical_name(normalise(row.get("identifierName") or "")),
                    normalise(row.get("identifierValue") or ""))  # results.csv may guard a cell: `="+91..."`
            if only is not None:
                if request_id not in ids if ids else pair not in pairs:
                    continue
                matched_ids.add(request_id)
                matched_pairs.add(pair)
            targets.append(Target(request_id, row.get("row") or "", pair[0], pair[1]))
    unmatched = len(ids - matched_ids) if ids else len(pairs - matched_pairs)
    return targets, unmatched if only is not None else 0


async def plan(folder: Path, settings: Settings, only: Path | None = None) -> Plan:
    """Which of the run's requests are still waiting for a checker, looked up now."""
    manifest = Manifest.load(folder)
    if manifest.dry_run:
        raise RunFolderError(f"{str(folder)!r} is a dry run: nothing was sent, so there is nothing to decide")
    targets, unmatched = await asyncio.to_thread(read_targets, folder, only)
    async with open_caller(settings) as caller:
        lookup = await current_states(caller, [t.request_id for t in targets], window_start(manifest.started),
                                      settings.get("list-limit"), settings.get("concurrency"))
        calls = caller.total_calls
    pending = [t for t in targets if lookup.states.get(t.request_id) == PENDING]
    others: Counter[str] = Counter(lookup.states.get(t.request_id, "unchecked") for t in targets
                                   if lookup.states.get(t.request_id) != PENDING)
    return Plan(folder, pending, others, unmatched, calls)


def old_outcome(row: dict[str, str]) -> str:
    """The outcome of a row written before approvals.csv had the column, from what the row holds."""
    error = row.get("error") or ""
    if error.startswith("in doubt"):
        return IN_DOUBT
    if error.startswith("no answer"):
        return NO_ANSWER
    state = row.get("state") or ""
    if state == PENDING:
        return NOT_APPLIED
    return DECIDED if state else REFUSED


def _add_outcome_column(path: Path) -> None:
    """Rewrite an approvals.csv of the earlier layout with the outcome column, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with path.open(newline="", encoding="utf-8") as src, tmp.open("w", newline="", encoding="utf-8") as dst:
        writer = csv_writer(dst)
        writer.writerow(APPROVAL_COLUMNS)
        for row in csv.DictReader(src):
            writer.writerow([old_outcome(row) if c == "outcome" else row.get(c) or "" for c in APPROVAL_COLUMNS])
    tmp.replace(path)


class _Journal:
    """approvals.csv, appended to row by row (a second approve on the same folder adds to it)."""

    def __init__(self, path: Path) -> None:
        new = not path.exists() or path.stat().st_size == 0
        if not new:
            with path.open(newline="", encoding="utf-8") as fh:
                header = tuple(next(csv.reader(fh), ()))
            if header == _OLD_COLUMNS:
                _add_outcome_column(path)
            elif header != APPROVAL_COLUMNS:
                raise RunFolderError(f"{str(path)!r} has columns this version does not write: move it aside "
                                     "(approve starts a new one)")
        self._fh = path.open("a", newline="", encoding="utf-8")
        self._writer = csv_writer(self._fh)
        if new:
            self._writer.writerow(APPROVAL_COLUMNS)

    def write(self, target: Target, decision: str, outcome: str, status: int | None, state: str, code: str,
              error: str) -> None:
        self._writer.writerow((target.request_id, target.row, spreadsheet_safe(target.identifier_name),
                               spreadsheet_safe(target.identifier_value), decision, outcome,
                               "" if status is None else status, state, code, spreadsheet_safe(error), stamp_ms()))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def decision_body(request_id: str, decision: str, message: str) -> dict[str, Any]:
    return {"requestId": request_id, "actionName": "AdminTask",
            "payload": {"AdminTask-Payload": {"actionDecision": decision, "actionMessage": message}}}


class DecisionInDoubt(Exception):
    """A decision's answer was lost and the request does not show it yet."""


async def _decide_one(caller: Caller, target: Target, decision: str, message: str, journal: _Journal,
                      report: ApproveReport, settle_wait: float) -> None:
    if report.aborted:
        return  # the credentials were refused: the rest is not attempted and not recorded

    async def settle(first_sent: float, lost_at: float) -> dict[str, Any] | None:
        """A decision whose answer was lost: what is the request now? Decided: adopt it. Still pending, or
        not readable: never send the decision again (the server may still be applying the first one);
        the request stays for the next approve, which plans from the live states."""
        await caller.sleep(max(0.0, lost_at + settle_wait - time.time()))
        again = await caller.get(target.request_id)
        now = again.answer.payload if again.done and again.answer is not None else None
        if now is not None and now.get("state") not in (None, PENDING):
            return now
        raise DecisionInDoubt("still pending" if now is not None else "it could not be read")

    try:
        settled = await caller.decide(decision_body(target.request_id, decision, message), settle)
    except RunAborted as exc:
        report.aborted = str(exc)
        return
    except DecisionInDoubt as exc:
        report.refused += 1
        report.counts[IN_DOUBT] += 1
        journal.write(target, decision, IN_DOUBT, None, "", "", f"in doubt: the answer was lost and the request "
                      f"is {exc}; it is not sent again: run approve again later (it plans from the live states)")
        return
    status, code, error = settled.error()
    decided = settled.adopted or (settled.answer.payload if settled.done and settled.answer is not None else None)
    state = str(decided.get("state") or "") if decided is not None else ""
    if settled.adopted is not None:
        status, code, error = 200, "", "the answer was lost; the request has been decided"
    if decided is not None and state and state != PENDING:
        outcome = DECIDED
        report.accepted += 1
        report.counts[state] += 1
        code, error = ("", "") if settled.adopted is None else (code, error)
    elif decided is not None and state:
        outcome = NOT_APPLIED
        report.refused += 1
        report.counts[outcome] += 1
        error = "answered, but the request is still AdminTask: run track later; approve again if it stays pending"
    elif settled.answer is None:
        outcome = NO_ANSWER
        report.refused += 1
        report.counts[outcome] += 1
        error = f"no answer: {error}; run approve again to retry"
    else:
        outcome = REFUSED
        report.refused += 1
        report.counts[outcome] += 1
        if status is not None:
            report.refused_by_status[status] += 1
        error = error or f"HTTP {status}"
    journal.write(target, decision, outcome, status, state, code, error)


async def decide(plan: Plan, settings: Settings, decision: str, message: str) -> ApproveReport:
    """Send the decision for every pending request of the plan; record each in approvals.csv."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}")
    report = ApproveReport()
    journal = _Journal(plan.folder / APPROVALS)
    try:
        async with open_caller(settings) as caller:
            await for_each(plan.pending, settings.get("concurrency"),
                           lambda t: _decide_one(caller, t, decision, message, journal, report,
                                                 settings.get("doubt-settle")))
            report.calls = caller.total_calls
    finally:
        journal.close()
    return report

