"""Settling rows whose answer was lost: did the server create their request or not?

A create whose answer was lost (a broken connection after sending, a timeout, a gateway's 502/504, a
2xx without a readable requestId) leaves the row *in doubt*. Before it is sent again, the list endpoint
is asked, and a request is adopted as the row's only when all of these hold:

- it is for the row's customer and label (identifier name, value, label);
- this maker created it (the userId create answers give; learnt first when not known yet);
- the server created it at or after the row's *first* send, less a margin for the two clocks: an
  earlier run's request for the same customer, whatever its state, is never taken for this one (the
  pending check before a run deals with those still waiting for a checker).

When the server created a request is read from its requestId when that is a version-1 UUID (the docs'
sample is: its time is UTC), compared through the server's Date header; else from its ``startTime``.
The docs' sample ``startTime`` is the server's *local* time with no zone (16:29:19 for a UUID made at
10:59:19 UTC, India's +05:30), so a zone-less ``startTime`` is only compared through an offset learnt from
this maker's own create answers (their ``startTime`` against the moment we sent them), never through the
Date header. What cannot be told yet (the maker's id, that offset) is learnt before anything is adopted.

Each row is looked up no sooner than ``settle`` seconds after its answer was lost (its own send at the
earliest), so that a gateway that lists requests late gets that long. Rows that are due together share
one paged pass, newest first.
A look-up that cannot be done raises ``LookupFailed``: the row stays in doubt (unprocessed, resumable).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bulkstatus.api.bodies import REQUEST_TYPE
from bulkstatus.api.calls import Caller
from bulkstatus.api.listing import ListUnavailable, list_pages, window_start
from bulkstatus.model import Row, canonical_name
from bulkstatus.timestamps import parse_iso

log = logging.getLogger(__name__)
Key = tuple[str, str, str]
# How much earlier than our clock says the server may stamp a request that is ours: its clock is
# learnt from create answers (or the Date header), to the second, and the way there takes some time.
MARGIN = 2.0
MARGIN_UNKNOWN_CLOCK = 30.0  # when nothing told the server's clock yet
BATCH_WINDOW = 0.5  # seconds of due times one pass of the list serves
MAKER_WAIT = 60.0  # seconds, from the first look-up that needs it, to learn the maker's id from an answer
NO_MAKER = ("no answer has told this maker's user id yet, so its requests cannot be told from others'; "
            "resume the run, or give --maker-user-id (the userId on any request this token's user made)")


class LookupFailed(Exception):
    """The row's request could not be looked up, so it stays in doubt."""


def row_key(row: Row) -> Key:
    return (canonical_name(row.identifier_name), row.identifier_value, row.label)


def request_key(item: dict[str, Any]) -> Key | None:
    """The same key, read from a request object as the API answers it."""
    details = item.get("details")
    task = details.get("IntouchAPITask-Payload") if isinstance(details, dict) else None
    if not isinstance(task, dict):
        return None
    query = task.get("queryParams") or {}
    body = task.get("body") or {}
    if not isinstance(query, dict) or not isinstance(body, dict):
        return None
    return (str(query.get("identifierName", "")), str(query.get("identifierValue", "")), str(body.get("label", "")))


def same_user(a: Any, b: Any) -> bool:
    """User ids compared as text: the journal, a setting and the API may give 42 or "42"."""
    return a is not None and b is not None and str(a) == str(b)


_UUID_EPOCH = 0x01B21DD213814000  # 1582-10-15 in 100 ns steps before 1970-01-01


def uuid1_time(request_id: Any) -> float | None:
    """The UTC time (epoch seconds) a version-1 UUID was made at, by its maker's clock; else None."""
    try:
        parsed = uuid.UUID(str(request_id))
    except ValueError:
        return None
    return (parsed.time - _UUID_EPOCH) / 1e7 if parsed.version == 1 else None


@dataclass(frozen=True, slots=True)
class Clocks:
    """What is known of the server's clocks, as offsets from ours (seconds; None: not known yet)."""

    date: float | None = None  # the Date header (true UTC by the server's clock) minus ours
    stamp: float | None = None  # a zone-less startTime read as UTC, minus ours: zone and skew together


def created_at(item: dict[str, Any], clocks: Clocks) -> tuple[float, float] | None:
    """When the server created ``item``, on our clock (epoch seconds), and the margin that reading
    carries; None when it cannot be told yet (a zone-less startTime and no stamp offset learnt)."""
    made = uuid1_time(item.get("requestId"))
    if made is None:
        text = item.get("startTime")
        stamped = parse_iso(text)
        if stamped is None:
            return None
        if isinstance(text, str) and not _names_zone(text):
            if clocks.stamp is None:
                return None
            return stamped.timestamp() - clocks.stamp, MARGIN
        made = stamped.timestamp()
    if clocks.date is None:
        return made, MARGIN_UNKNOWN_CLOCK
    return made - clocks.date, MARGIN


def _names_zone(text: str) -> bool:
    tail = text[10:]  # past the date, whose dashes are not a zone
    return tail.endswith(("Z", "z")) or "+" in tail or "-" in tail


def adoptable(item: dict[str, Any], key: Key, maker: Any, first_sent: float, clocks: Clocks) -> bool | None:
    """Whether ``item`` is the request this row's lost create made (see the module's rules): True, False,
    or None when that cannot be told yet (the maker's id or the server's stamp clock not learnt).

    ``first_sent``: the row's first send, our clock (epoch seconds).
    """
    if request_key(item) != key or (maker is not None and not same_user(item.get("userId"), maker)):
        return False
    when = created_at(item, clocks)
    if when is None or maker is None:
        return None
    made, margin = when
    return made >= first_sent - margin


@dataclass
class _Waiter:
    key: Key
    first_sent: float  # epoch seconds
    due: float  # epoch seconds
    future: asyncio.Future[dict[str, Any] | None] = field(repr=False)


class DoubtResolver:
    def __init__(self, caller: Caller, run_started: datetime, settle: float, page_size: int = 100,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._caller = caller
        self._since: date = window_start(run_started)
        self._settle = settle
        self._page_size = page_size
        self._sleep = sleep
        self._clock = clock
        self._waiting: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self._learnt = asyncio.Event()  # set whenever the maker or the stamp offset is learnt
        self._learn_deadline: float | None = None  # monotonic; one wait for all look-ups, not one each
        self.maker_user_id: Any = None
        self.known_request_ids: list[str] = []  # requests this run created, to learn the maker from
        self.stamp_offset: float | None = None  # a zone-less startTime read as UTC, minus our clock
        self.on_learnt: Callable[[Any, float | None], None] = lambda maker, stamp: None  # for the journal
        self._noted: tuple[Any, bool] = (None, False)
        self.maker_conflict: str | None = None  # set when an answer contradicts --maker-user-id
        self.list_calls = 0
        self.adopted = 0

    def learn(self, created: dict[str, Any], sent_at: float) -> None:
        """Learn the maker's user id and the server's stamp clock from a create answer to a call sent at
        ``sent_at`` (our clock): the stamp is later than the send, so stamp minus send bounds the offset
        from above, and the smallest such bound is the best (less than a second over, by the stamp's
        whole seconds)."""
        user = created.get("userId")
        if self.maker_user_id is None and user is not None:
            self.maker_user_id = user
        elif user is not None and not same_user(user, self.maker_user_id) and self.maker_conflict is None:
            self.maker_conflict = (f"--maker-user-id is {self.maker_user_id}, but the server says this token's "
                                   f"requests are made by user {user}: fix or drop --maker-user-id, then resume")
        text = created.get("startTime")
        stamped = parse_iso(text)
        if stamped is not None and isinstance(text, str) and not _names_zone(text):
            bound = stamped.timestamp() - sent_at
            if self.stamp_offset is None or bound < self.stamp_offset:
                self.stamp_offset = bound
        noted = (self.maker_user_id, self.stamp_offset is not None)
        if self.maker_user_id is not None and noted != self._noted:
            self._noted = noted
            self.on_learnt(self.maker_user_id, self.stamp_offset)
        self._learnt.set()

    def set_maker(self, maker: Any, stamp_offset: float | None = None) -> None:
        """What an earlier session learnt (or --maker-user-id gave)."""
        if self.maker_user_id is None:
            self.maker_user_id = maker
        if self.stamp_offset is None:
            self.stamp_offset = stamp_offset
        self._noted = (self.maker_user_id, self.stamp_offset is not None)
        self._learnt.set()

    @property
    def clocks(self) -> Clocks:
        return Clocks(self._caller.server_clock_offset, self.stamp_offset)

    async def lookup(self, row: Row, first_sent: float, lost_at: float) -> dict[str, Any] | None:
        """The request object the server holds for this row's lost create, or None; raises LookupFailed.

        ``first_sent``: the row's first send; ``lost_at``: when its last answer was lost (epoch seconds).
        """
        loop = asyncio.get_running_loop()
        waiter = _Waiter(row_key(row), first_sent, lost_at + self._settle, loop.create_future())
        self._waiting.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await waiter.future

    async def _run(self) -> None:
        while self._waiting:
            now = self._clock()
            soonest = min(w.due for w in self._waiting)
            if soonest > now:
                await self._sleep(soonest - now)
                continue
            # Rows due within BATCH_WINDOW share the pass: the first of them waits that much longer.
            horizon = soonest + BATCH_WINDOW
            latest = max((w.due for w in self._waiting if w.due <= horizon), default=soonest)
            if latest > now:
                await self._sleep(latest - now)
            batch = [w for w in self._waiting if w.due <= latest]
            self._waiting = [w for w in self._waiting if w.due > latest]
            try:
                found = await self._scan(batch)
            except BaseException as exc:  # every waiter hears of it; none is left hanging
                failure = exc if isinstance(exc, Exception) else LookupFailed("the look-up was cancelled")
                for waiter in batch:
                    if not waiter.future.done():
                        waiter.future.set_exception(failure if not isinstance(failure, ListUnavailable)
                                                    else LookupFailed(str(failure)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_result(found.get(waiter.key))

    async def _learn(self) -> None:
        """Learn what adopting needs (the maker's id, the server's stamp clock): from a request this run
        created, or from the next create answer that comes back; all look-ups together wait at most
        ``MAKER_WAIT`` seconds for it. Returns when something new was learnt; raises LookupFailed."""
        if self.maker_user_id is None:
            for request_id in self.known_request_ids[:3]:
                settled = await self._caller.get(request_id)
                found = settled.answer.payload if settled.done and settled.answer is not None else None
                if found is not None and found.get("userId") is not None:
                    self.set_maker(found["userId"])
                    return
        now = time.monotonic()
        if self._learn_deadline is None:
            self._learn_deadline = now + MAKER_WAIT
        self._learnt.clear()
        try:
            await asyncio.wait_for(self._learnt.wait(), max(0.0, self._learn_deadline - now))
        except TimeoutError:
            raise LookupFailed(NO_MAKER) from None

    async def _scan(self, batch: list[_Waiter]) -> dict[Key, dict[str, Any]]:
        wanted = {w.key: w for w in batch}
        # Per key, the requests that pass every rule known so far (what is not learnt yet is checked after).
        candidates: dict[Key, list[dict[str, Any]]] = {}
        params = {"requestType": REQUEST_TYPE, "startDate": self._since.isoformat(), "sortBy": "startDate",
                  "sortOrder": "desc"}
        calls_before = self._caller.calls["list"]
        oldest = min(w.first_sent for w in batch)
        page = 0
        try:
            async with aclosing(list_pages(self._caller, params, self._page_size)) as pages:
                async for items, _, _ in pages:
                    page += 1
                    clocks = self.clocks
                    whole_page_old = bool(items)
                    for item in items:
                        key = request_key(item)
                        waiter = wanted.get(key) if key is not None else None
                        if waiter is not None and adoptable(item, waiter.key, self.maker_user_id,
                                                            waiter.first_sent, clocks) is not False:
                            candidates.setdefault(waiter.key, []).append(item)
                        when = created_at(item, clocks)
                        if when is None or when[0] >= oldest - when[1]:
                            whole_page_old = False
                    # Newest first, so a page that is all older than the oldest row's send ends the pass; a
                    # server that sorts otherwise only costs more pages, never a request missed.
                    if whole_page_old:
                        break
            while any(adoptable(i, k, self.maker_user_id, wanted[k].first_sent, self.clocks) is None
                      for k, items in candidates.items() for i in items):
                await self._learn()
        finally:
            self.list_calls += self._caller.calls["list"] - calls_before
        found: dict[Key, dict[str, Any]] = {}
        clocks = self.clocks
        for key, items in candidates.items():
            ours = [i for i in items if adoptable(i, key, self.maker_user_id, wanted[key].first_sent, clocks)]
            if ours:
                found[key] = ours[-1]  # the oldest of them: the first send's
        self.adopted += len(found)
        log.debug("look-up of %d row(s) in doubt: %d found in %d page(s)", len(batch), len(found), page)
        return found
