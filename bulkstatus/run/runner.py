"""The run: read rows, hand valid ones to a pool of workers, record every outcome, write the summary.

Rows flow reader -> checks and duplicates -> queue -> workers (pace, send, retry) -> recorder. The
queue is small, so a million-row file is never held in memory; the reader runs in a thread so that
parsing a chunk does not stall requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from bulkstatus.api.bodies import BodyBuilder
from bulkstatus.api.calls import open_caller
from bulkstatus.errors import InputFileError, OutputError
from bulkstatus.input.duplicates import DuplicateIndex, customer_key, duplicate_message
from bulkstatus.input.reader import CheckedRow, InputReader, ReadOptions, RestRow, collector_paused
from bulkstatus.input.repeats import Repeats, find_repeats
from bulkstatus.jsonio import dumps
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.brakes import FailureBrake
from bulkstatus.run.control import Health, RunWatch, StopControl
from bulkstatus.run.doubt import DoubtResolver, row_key
from bulkstatus.run.folder import REQUESTS, SUMMARY, Identity, Manifest, identity, read_json, write_json
from bulkstatus.run.journal import Recorder, ResumePoint, result_from_fields
from bulkstatus.run.metrics import Metrics
from bulkstatus.run.pending import PendingIndex, pending_check, pending_key
from bulkstatus.run.sender import Sender
from bulkstatus.settings import Settings
from bulkstatus.timestamps import iso, now_utc, stamp_ms

log = logging.getLogger(__name__)
T = TypeVar("T")
REST_BATCH = 10_000  # rows of a stopped run's rest recorded at a time
FLUSH_EVERY = 0.1  # seconds between batches of outcomes written to the files
SYNC_EVERY = 1.0  # seconds between fsyncs
METRICS_EVERY = 1.0  # seconds between writes of metrics.jsonl and live.json


class _PrepassCut(Exception):
    """The run ended while the pre-pass still read the file."""


@dataclass
class Job:
    settings: Settings
    input_path: Path
    manifest: Manifest
    read_options: ReadOptions
    resume: ResumePoint = field(default_factory=ResumePoint)
    dry_run: bool = False
    on_result: Callable[[Result], None] = lambda result: None
    expected_rows: int = 0  # a line count of the input: sizes the duplicate index once, up front
    input_identity: Identity | None = None  # the input as it was hashed: a change while reading stops the run


@dataclass
class RunReport:
    folder: Path
    counts: Counter[str]
    started: datetime
    ended: datetime
    requests_started: int = 0
    retries: int = 0
    throttled: int = 0
    effective_rate: float | None = None
    server_allowed: float | None = None  # requests a second the server let through, learnt from its 429s
    auth_refreshes: int = 0
    adopted: int = 0
    lookups: int = 0
    in_doubt: int = 0  # unprocessed rows that were sent and whose answer was lost: resume settles them
    redo: Counter[str] = field(default_factory=Counter)  # rows in retry.csv ("retry") and fix.csv ("fix")
    interrupted: bool = False
    abort_reason: str | None = None
    limit: int | None = None  # --limit of this session
    left_by_limit: int = 0  # rows recorded unprocessed because the limit was reached

    @property
    def duration(self) -> float:
        return (self.ended - self.started).total_seconds()


class Run:
    """One execution of a Job; ``stop`` is the handle the CLI's signal handlers use."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.stop = StopControl()
        self._started = now_utc()
        settings = job.settings
        self._queue: asyncio.Queue[tuple[Row, float | None] | None] = asyncio.Queue(
            maxsize=max(16, settings.get("concurrency") * 4))
        self._recorder = Recorder(job.manifest.folder, job.resume)
        self._sender: Sender | None = None
        self._health: Health | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._requests_file: Any = None
        self._current: set[asyncio.Task[None]] = set()
        self._grace_over = False
        self._rows_seen = 0
        self._rest_reader: InputReader | None = None  # set when a stop leaves rows unread
        self._rest_after = 0
        self._watched: InputReader | None = None  # the open input, while it is read
        self.notes: Counter[str] = Counter()  # adjustments the reader made, e.g. trimmed spaces
        self._grace_timer: asyncio.TimerHandle | None = None
        self.pending: PendingIndex = {}  # (name, value, label) -> requestId of a request awaiting a checker
        # Second by second, for the report and `bulkstatus status` (rows 1..last_row were done before).
        self.metrics = Metrics(job.manifest.folder, job.expected_rows, job.resume.last_row, job.resume.counts)
        self._limit: int | None = settings.get("limit")
        self._handed = 0  # rows handed to the workers (sent, or written to requests.jsonl), for --limit
        self._left_by_limit = 0
        self._rest_error = "not sent: the run stopped before this row"
        failures = settings.get("max-failures")
        self._brake = FailureBrake(failures) if failures is not None else None
        # From the pre-pass: rows whose customer the file names again (only they can be duplicates), and
        # customers it gives different labels (none of their rows is sent). None until it has read the file.
        self._repeats: Repeats | None = None
        self._prepass: asyncio.Future[Repeats | None] | None = None
        self._prepass_cut = False  # set when the run ends before the pre-pass does
        self._input_thread = ThreadPoolExecutor(1, thread_name_prefix="input")

    async def execute(self) -> RunReport:
        job, settings = self.job, self.job.settings
        job.manifest.status = "running"
        job.manifest.save()
        flusher = asyncio.create_task(self._flush_loop())
        try:
            with InputReader(job.input_path, job.read_options) as reader:
                self._watched = reader  # looked at every FLUSH_EVERY too, so that a change stops the run at once
                # The pre-pass reads the whole file while the pending check pages through the API.
                self._prepass = asyncio.ensure_future(self._on_input_thread(self._read_repeats, reader))
                try:
                    if job.dry_run:
                        self._requests_file = (job.manifest.folder / REQUESTS).open("wb")
                        await self._pump(reader, settings.get("concurrency"))
                    else:
                        await self._send_all(reader)
                finally:
                    self._prepass_cut = True  # it ends at its next batch (a thread cannot be cancelled)
                    with contextlib.suppress(Exception):
                        await self._prepass
        finally:
            self._input_thread.shutdown(wait=False)
            flusher.cancel()
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            try:
                self._recorder.close()
            except OutputError as exc:
                self.stop.abort(str(exc))
            self.metrics.flush(final=True)
            if self._requests_file is not None:
                self._requests_file.close()
        return self._finish()

    async def _send_all(self, reader: InputReader) -> None:
        settings = self.job.settings
        self._health = Health(settings.get("abort-after"))
        async with open_caller(settings, RunWatch(self.stop, self._health, self.metrics)) as caller:
            # Look-ups reach back to the start of the whole run, not of this resume.
            first_start = self.job.manifest.started
            resolver = DoubtResolver(caller, min(first_start, self._started), settings.get("doubt-settle"),
                                     settings.get("list-limit"))
            resolver.known_request_ids = list(self.job.resume.request_ids)
            if self.job.resume.maker is not None:
                resolver.set_maker(self.job.resume.maker, self.job.resume.stamp_offset)
            elif settings.get("maker-user-id"):
                resolver.set_maker(settings.get("maker-user-id"))
            resolver.on_learnt = self._recorder.note_maker
            if settings.get("pending-check"):
                # A read, left at once on Ctrl-C: a long queue's pages must not hold the stop up.
                found = await self._unless_stopped(pending_check(caller, self.stop, settings.get("list-limit")))
                self.pending = found or {}
            self._sender = Sender(caller, BodyBuilder(settings), self._recorder, resolver, self.stop)
            await self._pump(reader, settings.get("concurrency"))

    async def _on_input_thread(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on the one thread that reads the input (the pre-pass, then the chunks), so that
        the reading allocates from one thread's malloc arena rather than from whichever of the default
        executor's threads is free. (Its share in the lower peaks of issue 13 was not measured apart.)"""
        return await asyncio.get_running_loop().run_in_executor(self._input_thread, work, *args)

    async def _unless_stopped(self, work: Coroutine[Any, Any, T]) -> T | None:
        """``work``'s result, or None when the run is stopped first (then ``work`` is cancelled)."""
        task = asyncio.ensure_future(work)
        while not task.done():
            if self.stop.stopping:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
            await asyncio.wait({task}, timeout=FLUSH_EVERY)
        return task.result()

    async def _pump(self, reader: InputReader, workers: int) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(workers)]
        try:
            await self._feed(reader)
        finally:
            for _ in self._workers:
                await self._queue.put(None)
            await asyncio.gather(*self._workers)

    def _grace_expired(self) -> None:
        """Cancel the requests still in flight; each worker records its row and carries on."""
        self._grace_over = True
        for task in self._current:
            task.cancel()

    async def _feed(self, reader: InputReader) -> None:
        if not await self._repeats_found(reader):
            return
        job = self.job
        # Sized up front for the rows that may be duplicates (growing it in steps would hold the old and
        # the new table together for a moment); built after the pre-pass, whose arrays are freed by then.
        repeats = self._repeats
        dedupe = DuplicateIndex(repeats.repeated if repeats is not None else job.expected_rows)
        resume = job.resume
        chunks: Iterator[list[CheckedRow]] = iter(reader)
        while True:
            try:
                chunk = await self._on_input_thread(next, chunks, None)
            except InputFileError as exc:
                # Found part-way through a large file, after rows were sent: stop like any abort,
                # so that what was sent is recorded; the rows past the problem have no line.
                self.stop.abort(f"the input cannot be read past row {self._rows_seen}: {exc}")
                return
            # Checked after each read, before its rows are used: a chunk read after a change is dropped.
            if self._input_changed(reader):
                return
            if chunk is None:
                return
            for checked in chunk:
                limited = self._limit is not None and self._handed >= self._limit
                if self.stop.stopping or limited:  # the rest is recorded after the workers are done
                    self._rest_reader, self._rest_after = reader, checked.row.number - 1
                    await self._drain()
                    if limited and not self.stop.stopping:
                        await self._write_limited_rest()
                    else:
                        await self._write_rest()
                    return
                self._rows_seen = checked.row.number
                await self._route(checked, dedupe, resume)

    def _read_repeats(self, reader: InputReader) -> Repeats | None:
        """The pre-pass over the whole file (before anything is sent; on resume too, so that its verdicts
        are the same): which rows' customers appear again, and which customers it gives different labels.
        On the input thread; None when it was cut short (the run stopped: then no row is sent, and the
        verdicts are not needed)."""
        def batches() -> Iterator[Any]:
            for batch in reader.rest_columns():
                if self._prepass_cut or self.stop.stopping:
                    raise _PrepassCut
                yield batch

        try:
            with collector_paused():
                return find_repeats(batches())
        except _PrepassCut:
            return None

    async def _repeats_found(self, reader: InputReader) -> bool:
        """Wait for the pre-pass; False when the run cannot go on (nothing may be sent without it)."""
        try:
            assert self._prepass is not None
            found = await asyncio.shield(self._prepass)
        except InputFileError as exc:
            self.stop.abort(f"the input cannot be read: {exc}")
            return False
        if found is None:
            if not self.stop.stopping:  # cut short only by a stop; anything else would be a bug, and sends nothing
                self.stop.abort("the pre-pass over the input ended early")
            return not self._input_changed(reader)  # a stop: the rows are recorded unprocessed, none sent
        self._repeats = found
        if found:
            log.warning("%d customer(s) are given different labels, in %d rows: none of those rows is sent "
                        "(`bulkstatus validate` lists them)", len(found), found.rows)
        return not self._input_changed(reader)

    def _input_changed(self, reader: InputReader) -> bool:
        """Whether the open input is no longer the file that was hashed; if so the run is stopped."""
        job = self.job
        if job.input_identity is None or identity(os.fstat(reader.fileno())) == job.input_identity:
            return False
        self.stop.abort(f"the input {str(job.input_path)!r} changed while the run read it (past row "
                        f"{self._rows_seen}): the rows sent so far are recorded; put the original file back, "
                        f"then `bulkstatus resume {job.manifest.folder}`")
        return True

    async def _drain(self) -> None:
        """Wait until every row handed to the workers is recorded (the grace period bounds it)."""
        while self._recorder.next_row <= self._rows_seen and not self._recorder.failure:
            await asyncio.sleep(0.01)

    async def _write_limited_rest(self) -> None:
        """The rest, when --limit rows were handed out: unprocessed like a stop's, and counted."""
        log.info("--limit %d reached: the rows after row %d are left for `bulkstatus resume %s`", self._limit,
                 self._rest_after, self.job.manifest.folder)
        self._rest_error = f"not sent: --limit {self._limit} was reached before this row"
        before = self._recorder.counts[Outcome.UNPROCESSED.value]
        await self._write_rest()
        self._left_by_limit = self._recorder.counts[Outcome.UNPROCESSED.value] - before

    async def _write_rest(self) -> None:
        """The rows a stopped run did not reach, recorded `unprocessed` in bulk (the csv module, no
        checks), 10,000 at a time, each batch used only if the input is still the file that was hashed."""
        job, reader = self.job, self._rest_reader
        assert reader is not None
        if self._recorder.failure is not None:
            return  # nothing more can be written; resume does the rest
        resume = job.resume
        after = max(self._rest_after, resume.last_row)
        with collector_paused():  # millions of small objects, no cycles: the collector would only slow it
            await self._write_rest_from(reader, reader.rest(after, REST_BATCH))

    async def _write_rest_from(self, reader: InputReader,
                               batches: Iterator[list[RestRow]]) -> None:
        finished = self.job.resume.finished  # rows an earlier session finished: their own outcome
        while True:
            try:
                batch = next(batches, None)
            except InputFileError as exc:
                self.stop.abort(f"the input cannot be read past row {self._rows_seen}: {exc}")
                return
            if batch is None or self._input_changed(reader):
                return
            if finished and any(row[0] in finished for row in batch):
                start = 0
                for at, row in enumerate(batch):
                    if row[0] in finished:
                        self._write_rest_batch(batch[start:at])
                        self._record(result_from_fields(Row(*row), finished.pop(row[0])))
                        start = at + 1
                batch = batch[start:]
            self._write_rest_batch(batch)
            await asyncio.sleep(0)  # a second Ctrl-C is heard between batches

    def _write_rest_batch(self, batch: list[RestRow]) -> None:
        try:
            self._recorder.unprocessed(batch, self._rest_error,
                                       "in doubt: sent by an earlier session, its answer lost: resume looks it up")
        except OutputError as exc:
            self.stop.abort(str(exc))
        else:
            self.metrics.finished(Outcome.UNPROCESSED.value, count=len(batch))

    async def _route(self, checked: CheckedRow, dedupe: DuplicateIndex, resume: ResumePoint) -> None:
        row = checked.row
        number = row.number
        record = self._record
        if checked.notes and number > resume.last_row:
            self.notes.update(checked.notes)
        problems = checked.problems
        repeats = self._repeats
        if repeats and (clash := repeats.message(number)) is not None:
            problems = [*problems, clash]
        if problems:
            if number > resume.last_row:
                record(Result(row, Outcome.INVALID, error="; ".join(problems), finished_at=stamp_ms()))
            return
        # A row whose customer appears nowhere else in the file is no duplicate: not hashed, not stored.
        earlier = (dedupe.check(customer_key(checked.canonical_name, row.identifier_value), number)
                   if repeats is None or repeats.may_repeat(number) else None)
        if number <= resume.last_row:
            return  # already in results.csv; it only had to be seen for the duplicate check
        if earlier is not None:
            record(Result(row, Outcome.DUPLICATE, error=duplicate_message(earlier, checked.canonical_name),
                          finished_at=stamp_ms()))
        elif number in resume.finished:
            record(result_from_fields(row, resume.finished.pop(number)))
        elif (self.pending and number not in resume.in_doubt
              and (waiting := self.pending.get(pending_key(row_key(row))))):
            record(Result(row, Outcome.PENDING_EXISTS, request_id=waiting, state="AdminTask",
                          error="not sent: this customer has a pending request with this label",
                          finished_at=stamp_ms()))
        elif self.stop.stopping:
            record(Result(row, Outcome.UNPROCESSED, error="not sent: the run stopped before this row",
                          finished_at=stamp_ms()))
        else:
            self._handed += 1
            await self._queue.put((row, resume.in_doubt.get(number)))

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while (item := await self._queue.get()) is not None:
            row, in_doubt = item
            self._current.add(me)
            try:
                result = await self._process(row, in_doubt)
            except asyncio.CancelledError:
                if not self._grace_over:
                    raise
                me.uncancel()
                result = Result(row, Outcome.UNPROCESSED, attempts=1, finished_at=stamp_ms(),
                                error="in flight when the grace period ended: resume looks it up first")
            except Exception as exc:  # a bug must stop the run cleanly, never hang it or lose the row
                log.exception("internal error on row %d", row.number)
                self.stop.abort(f"internal error ({type(exc).__name__}) on row {row.number}: see run.log; "
                                "resume the run once it is fixed")
                result = Result(row, Outcome.UNPROCESSED, finished_at=stamp_ms(),
                                error=f"internal error ({type(exc).__name__}): resume looks it up first")
            finally:
                self._current.discard(me)
            if self._brake is not None and (reason := self._brake.observe(result)):
                self.stop.abort(reason)  # like any abort: rows in flight finish, the rest is unprocessed
            self._record(result)

    def _record(self, result: Result) -> None:
        try:
            self._recorder.record(result)
        except OutputError as exc:  # the files stop where they were written whole; resume goes on
            self.stop.abort(str(exc))
        self.metrics.finished(result.outcome.value, result.error)
        self.job.on_result(result)

    async def _process(self, row: Row, in_doubt: float | None) -> Result:
        if self.stop.stopping and in_doubt is None:
            return Result(row, Outcome.UNPROCESSED, error="not sent: the run stopped before this row",
                          finished_at=stamp_ms())
        if self._sender is None:  # dry run
            body = BodyBuilder(self.job.settings, authorization="***").body(row)
            self._requests_file.write(dumps({"row": row.number, "body": body}) + b"\n")
            return Result(row, Outcome.DRY_RUN, finished_at=stamp_ms())
        return await self._sender.submit(row, in_doubt)

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_sync = last_metrics = loop.time()
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            if loop.time() - last_metrics >= METRICS_EVERY:
                last_metrics = loop.time()
                self.metrics.flush()
            try:
                self._recorder.flush()
                if loop.time() - last_sync >= SYNC_EVERY:
                    last_sync = loop.time()
                    await asyncio.to_thread(self._recorder.sync)
            except OutputError as exc:
                self.stop.abort(str(exc))
            if self._watched is not None and not self.stop.stopping:
                with contextlib.suppress(ValueError):  # (closed: the whole input was read)
                    self._input_changed(self._watched)
            if self.stop.stopping and self._grace_timer is None:
                self._grace_timer = loop.call_later(self.job.settings.get("grace"), self._grace_expired)
            if self._health is not None and self._health.exhausted():
                self.stop.abort(f"most requests have failed with retryable errors for over "
                                f"{self._health.bound:.0f} s: the API looks unavailable; "
                                "resume the run when it is back")

    def _finish(self) -> RunReport:
        ended = now_utc()
        for note, count in self.notes.items():
            log.warning("%d row(s): %s (`bulkstatus validate` lists them)", count, note)
        report = RunReport(self.job.manifest.folder, Counter(self._recorder.counts), self._started, ended,
                           interrupted=self.stop.interrupted, abort_reason=self.stop.abort_reason,
                           in_doubt=self._recorder.in_doubt, limit=self._limit,
                           left_by_limit=self._left_by_limit, redo=Counter(self._recorder.redo))
        sender = self._sender
        if sender is not None:
            caller = sender.caller
            report.requests_started = caller.calls["create"]
            report.retries = caller.retries
            report.throttled = caller.throttled
            report.effective_rate = caller.pacer.effective_per_second
            report.server_allowed = caller.pacer.allowed
            report.auth_refreshes = caller.credentials.refreshes
            report.adopted = sender.resolver.adopted
            report.lookups = sender.resolver.list_calls
        # A row left unprocessed (a look-up that failed, say) keeps the run open: resume finishes it.
        status = ("aborted" if report.abort_reason else "interrupted" if report.interrupted
                  else "incomplete" if report.counts.get(Outcome.UNPROCESSED.value) else "finished")
        self.job.manifest.status = status
        try:
            self.job.manifest.save()
            write_summary(self.job, report, status)
        except OutputError as exc:  # the run's files say what was done; this one says why it stopped
            report.abort_reason = report.abort_reason or str(exc)
        return report


# What summary.json adds up over the sessions of a run (the first run and each resume).
SUMMED = ("durationSeconds", "requestsStarted", "retries", "throttled", "authRefreshes", "adoptedAfterLostAnswer",
          "lookupCalls")


def write_summary(job: Job, report: RunReport, status: str) -> None:
    """summary.json for the whole run: outcome counts as the files hold them, and the figures of every
    session (`sessions`) summed; a session ended by kill -9 wrote none, so its figures are missing."""
    duration = report.duration
    rate = job.settings.get("rate")
    path = job.manifest.folder / SUMMARY
    session = {
        "startedAt": iso(report.started),
        "endedAt": iso(report.ended),
        "status": status,
        "durationSeconds": round(duration, 3),
        "requestsStarted": report.requests_started,
        "retries": report.retries,
        "throttled": report.throttled,
        "authRefreshes": report.auth_refreshes,
        "adoptedAfterLostAnswer": report.adopted,
        "lookupCalls": report.lookups,
        "abortReason": report.abort_reason,
        "limit": report.limit,
        "leftByLimit": report.left_by_limit,
    }
    sessions = [*_earlier_sessions(path), session]
    totals = {name: sum(s.get(name) or 0 for s in sessions) for name in SUMMED}
    totals["durationSeconds"] = round(totals["durationSeconds"], 3)
    sent_for = totals["durationSeconds"]
    write_json(path, {
        "status": status,
        "counts": {o.value: report.counts.get(o.value, 0) for o in Outcome},
        "rows": sum(report.counts.values()),
        "inDoubt": report.in_doubt,
        "retryRows": report.redo.get("retry", 0),  # retry.csv: run it again as it is
        "fixRows": report.redo.get("fix", 0),  # fix.csv: change what its fix column says first
        "startedAt": sessions[0]["startedAt"],
        "endedAt": iso(report.ended),
        "originalStartedAt": job.manifest.started_at,
        **totals,
        "achievedRatePerSecond": round(totals["requestsStarted"] / sent_for, 3) if sent_for > 0 else None,
        "configuredRate": rate.text if rate is not None else None,
        "effectiveRatePerSecond": (None if report.effective_rate in (None, float("inf"))
                                   else round(report.effective_rate or 0.0, 3)),
        "serverAllowedRatePerSecond": None if report.server_allowed is None else round(report.server_allowed, 3),
        "abortReason": report.abort_reason,
        "sessions": sessions,
        "input": {"path": job.manifest.input, "sha256": job.manifest.sha256},
        "dryRun": job.dry_run,
        "settings": job.settings.public(),
    })


def _earlier_sessions(path: Path) -> list[dict[str, Any]]:
    """The sessions an earlier summary.json of this run folder recorded (none for a new run)."""
    try:
        earlier = read_json(path)
    except (OSError, ValueError):
        return []
    if not isinstance(earlier, dict):
        return []
    sessions = earlier.get("sessions")
    if isinstance(sessions, list):
        return [s for s in sessions if isinstance(s, dict)]
    # A summary written before sessions were kept: its figures are one session's.
    return [{name: earlier.get(name) for name in (*SUMMED, "startedAt", "endedAt", "status")}]
