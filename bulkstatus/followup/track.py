"""Follow a finished run's requests: their current state, in results.csv and summary.json.

Every row with a requestId (``submitted``, and ``pending-exists`` rows, whose request an earlier run
made) is looked up with ``listing.current_states``. results.csv is then rewritten as a stream, row by
row into a temporary file that replaces it (so a reader sees the old file or the new one), with the new
``state``, a ``stateCheckedAt`` column and a ``stateReason`` column (why a request was rejected or failed,
when the API says: ``bulkstatus.api.reasons``); what stays in memory is one entry per request. The same
pass writes ``rejected.csv`` (``bulkstatus.followup.redo``). With ``wait`` the look-up repeats, for the
requests not yet final only, until all are final or the time is up.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bulkstatus.api.calls import Caller, open_caller
from bulkstatus.api.listing import FINAL_STATES, NOT_FOUND, current_states, window_start
from bulkstatus.errors import RunFolderError
from bulkstatus.followup.redo import REDO, RedoFile
from bulkstatus.logs import scrub
from bulkstatus.run.cells import spreadsheet_safe
from bulkstatus.run.folder import SUMMARY, Manifest, read_json, write_json
from bulkstatus.run.journal import RESULTS, csv_writer
from bulkstatus.settings import Settings
from bulkstatus.timestamps import stamp_ms

CHECKED_COLUMN = "stateCheckedAt"
REASON_COLUMN = "stateReason"
UNCHECKED = "unchecked"  # counted for a request whose look-up failed; its old state stays in the file
# States after which nothing changes any more: the documented final ones, and a requestId the API
# does not know.
SETTLED = FINAL_STATES | {NOT_FOUND}


@dataclass
class TrackReport:
    folder: Path
    counts: Counter[str]  # requests per state (UNCHECKED for those that could not be looked up)
    requests: int
    calls: Counter[str]  # HTTP attempts by kind: list, get
    polls: int
    checked_at: str
    timed_out: bool = False
    last_problem: str = ""  # why the last unchecked request could not be looked up
    redo_rows: int = 0  # rows in rejected.csv
    reasons: Counter[str] = field(default_factory=Counter)  # "state: reason" of the rows in rejected.csv

    @property
    def api_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def settled(self) -> bool:
        return all(state in SETTLED for state in self.counts)


@dataclass
class _Known:
    """Per request: its state and when it was last looked up ('' when not in this track)."""

    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # of the requests looked up whose answer gave one

    def open_ids(self) -> list[str]:
        return [rid for rid, (state, checked) in self.states.items() if not checked or state not in SETTLED]


def trackable(folder: Path) -> Manifest:
    """The run's manifest, once it is sure that rewriting results.csv harms nothing."""
    manifest = Manifest.load(folder)
    if manifest.dry_run:
        raise RunFolderError(f"{str(folder)!r} is a dry run: nothing was sent, so there is nothing to track")
    if manifest.status != "finished":
        raise RunFolderError(f"{str(folder)!r} is {manifest.status}, not finished: complete it with "
                             f"`bulkstatus resume {folder}` first (track rewrites results.csv)")
    if not (folder / RESULTS).is_file():
        raise RunFolderError(f"{str(folder)!r} has no {RESULTS}: give the folder a run printed as its last line")
    return manifest


def read_requests(path: Path) -> dict[str, tuple[str, str]]:
    """requestId -> (state, stateCheckedAt) of every row of results.csv that has a requestId."""
    found: dict[str, tuple[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            request_id = row.get("requestId") or ""
            if request_id:
                found[request_id] = (row.get("state") or "", row.get(CHECKED_COLUMN) or "")
    return found


def rewrite_results(path: Path, states: dict[str, tuple[str, str]], reasons: dict[str, str]) -> RedoFile:
    """Put each request's state, check time and reason into results.csv, atomically; write rejected.csv
    from the same rows (a row not looked up this time keeps what an earlier track wrote)."""
    tmp = path.with_name(path.name + ".tmp")
    with path.open(newline="", encoding="utf-8") as src, tmp.open("w", newline="", encoding="utf-8") as dst:
        reader = csv.reader(src)
        writer = csv_writer(dst)
        header = next(reader, None)
        if header is None:
            raise RunFolderError(f"{str(path)!r} is empty: the run recorded no rows")
        header.extend(c for c in (CHECKED_COLUMN, REASON_COLUMN) if c not in header)
        writer.writerow(header)
        id_at, state_at, checked_at, reason_at = (header.index(c) for c in ("requestId", "state", CHECKED_COLUMN,
                                                                            REASON_COLUMN))
        width = len(header)
        redo = RedoFile(path.with_name(REDO), header)
        try:
            for row in reader:
                row.extend([""] * (width - len(row)))
                known = states.get(row[id_at]) if row[id_at] else None
                if known is not None and known[1]:
                    row[state_at], row[checked_at] = known
                    row[reason_at] = spreadsheet_safe(reasons.get(row[id_at], ""))
                writer.writerow(row)
                redo.offer(row)
            dst.flush()
            os.fsync(dst.fileno())
        except BaseException:
            redo.discard()
            raise
    os.replace(tmp, path)
    redo.commit()
    return redo


def write_tracking(folder: Path, report: TrackReport) -> None:
    """Add (or replace) the ``tracking`` section of summary.json."""
    path = folder / SUMMARY
    summary: Any = {}
    if path.is_file():
        try:
            summary = read_json(path)
        except (OSError, ValueError):
            summary = {}
    if not isinstance(summary, dict):
        summary = {}
    summary["tracking"] = {
        "checkedAt": report.checked_at,
        "requests": report.requests,
        "counts": dict(sorted(report.counts.items())),
        "settled": report.settled,
        "apiCalls": report.api_calls,
        "listCalls": report.calls.get("list", 0),
        "getCalls": report.calls.get("get", 0),
        "polls": report.polls,
        "timedOut": report.timed_out,
        "redoFile": REDO,
        "redoRows": report.redo_rows,
        "reasons": dict(report.reasons.most_common(20)),
    }
    write_json(path, summary)


@dataclass
class WaitOptions:
    wait: bool = False
    timeout: float = 3600.0  # seconds
    interval: float = 30.0  # seconds between polls
    on_poll: Callable[[int, int], None] = lambda settled, total: None  # (settled, total) after each poll
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic


async def _poll(caller: Caller, known: _Known, since: date | None, settings: Settings) -> None:
    lookup = await current_states(caller, known.open_ids(), since, settings.get("list-limit"),
                                  settings.get("concurrency"))
    checked_at = stamp_ms()
    for request_id, state in lookup.states.items():
        known.states[request_id] = (state, checked_at)
        known.unchecked.pop(request_id, None)
        reason = lookup.reasons.get(request_id)
        if reason:
            known.reasons[request_id] = scrub(reason)
        else:
            known.reasons.pop(request_id, None)
    known.unchecked.update(lookup.unchecked)


async def track(folder: Path, settings: Settings, options: WaitOptions | None = None) -> TrackReport:
    """Look the run's requests up (again and again with ``wait``), then record what was found."""
    options = options or WaitOptions()
    manifest = trackable(folder)
    results = folder / RESULTS
    known = _Known(await asyncio.to_thread(read_requests, results))
    # Only this track's look-ups count: a state from an earlier track is looked up again.
    known.states = {rid: (state, "") for rid, (state, _) in known.states.items()}
    since = window_start(manifest.started)
    deadline = options.clock() + options.timeout
    polls = 0
    timed_out = False
    async with open_caller(settings) as caller:
        while True:
            await _poll(caller, known, since, settings)
            polls += 1
            total = len(known.states)
            open_count = len(known.open_ids())
            options.on_poll(total - open_count, total)
            if not options.wait or open_count == 0:
                break
            remaining = deadline - options.clock()
            if remaining <= 0:
                timed_out = True
                break
            await options.sleep(min(options.interval, remaining))
        calls = Counter(caller.calls)
    redo = await asyncio.to_thread(rewrite_results, results, known.states, known.reasons)
    counts: Counter[str] = Counter(state if checked else UNCHECKED for state, checked in known.states.values())
    report = TrackReport(folder, counts, len(known.states), calls, polls, stamp_ms(), timed_out,
                         next(iter(known.unchecked.values()), ""), redo.rows, redo.reasons)
    write_tracking(folder, report)
    return report
