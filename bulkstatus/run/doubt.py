"""Settling rows whose answer was lost: did the server create their request or not?

A create whose answer was lost (a broken connection after sending, a timeout, a gateway's 502/504, a
2xx without a readable requestId) leaves the row *in doubt*. Before it is sent again, the list endpoint
is asked, and a request is adopted as the row's only when all of these hold:

- it is for the row's customer and label (identifier name, value, label);
- this maker created it (the userId create answers give; learnt first when not known yet);
- the server stamped it at or after the row's *first* send, less a margin for the two clocks: an
  earlier run's request for the same customer, whatever its state, is never taken for this one (the
  pending check before a run deals with those still waiting for a checker).

Each row is looked up no sooner than ``settle`` seconds after its own last send, so that a gateway that
lists requests late gets that long. Rows that are due together share one paged pass, newest first.
A look-up that cannot be done raises ``LookupFailed``: the row stays in doubt (unprocessed, resumable).
"""

from __future__ import annotations

import asyncio
import logging
import time
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


def adoptable(item: dict[str, Any], key: Key, maker: Any, first_sent: float, offset: float | None) -> bool:
    """Whether ``item`` is the request this row's lost create made (see the module's rules). With
    ``maker`` None, whether it would be if its maker is ours (the caller must then find out).

    ``first_sent``: the row's first send, our clock (epoch seconds); ``offset``: server clock minus ours.
    """
    if request_key(item) != key or (maker is not None and not same_user(item.get("userId"), maker)):
        return False
    stamped = parse_iso(item.get("startTime"))
    if stamped is None:
        return False  # nothing proves it is not an earlier run's request
    margin = MARGIN if offset is not None else MARGIN_UNKNOWN_CLOCK
    return stamped.timestamp() >= first_sent + (offset or 0.0) - margin


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
        self._maker_known = asyncio.Event()
        self._maker_deadline: float | None = None  # monotonic; one wait for all look-ups, not one each
        self.maker_user_id: Any = None
        self.known_request_ids: list[str] = []  # requests this run created, to learn the maker from
        self.server_offset: float | None = None  # server clock minus ours, seconds
        self.on_maker: Callable[[Any], None] = lambda maker: None
        self.maker_conflict: str | None = None  # set when an answer contradicts --maker-user-id
        self.list_calls = 0
        self.adopted = 0

    def learn(self, created: dict[str, Any], answered_at: float | None = None) -> None:
        """Learn the maker's user id and the server's clock from a create answer."""
        user = created.get("userId")
        if self.maker_user_id is None and user is not None:
            self.set_maker(user)
        elif user is not None and not same_user(user, self.maker_user_id) and self.maker_conflict is None:
            self.maker_conflict = (f"--maker-user-id is {self.maker_user_id}, but the server says this token's "
                                   f"requests are made by user {user}: fix or drop --maker-user-id, then resume")
        if self.server_offset is None:
            stamped = parse_iso(created.get("startTime"))
            if stamped is not None:
                self.server_offset = stamped.timestamp() - (answered_at or self._clock())

    def set_maker(self, maker: Any) -> None:
        if self.maker_user_id is None:
            self.maker_user_id = maker
            self._maker_known.set()
            self.on_maker(maker)

    @property
    def offset(self) -> float | None:
        """Server clock minus ours: from a create answer's startTime, else from an answer's Date header."""
        return self.server_offset if self.server_offset is not None else self._caller.server_clock_offset

    async def lookup(self, row: Row, first_sent: float, last_sent: float) -> dict[str, Any] | None:
        """The request object the server holds for this row's lost create, or None; raises LookupFailed."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(row_key(row), first_sent, last_sent + self._settle, loop.create_future())
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

    async def _ensure_maker(self) -> None:
        """Learn whose requests are ours before adopting any: from a request this run created, or from
        the next create answer that comes back (at most ``MAKER_WAIT`` seconds)."""
        if self.maker_user_id is not None:
            return
        for request_id in self.known_request_ids[:3]:
            settled = await self._caller.get(request_id)
            found = settled.answer.payload if settled.done and settled.answer is not None else None
            if found is not None and found.get("userId") is not None:
                self.set_maker(found["userId"])
                return
        now = time.monotonic()
        if self._maker_deadline is None:
            self._maker_deadline = now + MAKER_WAIT
        try:
            await asyncio.wait_for(self._maker_known.wait(), max(0.0, self._maker_deadline - now))
        except TimeoutError:
            raise LookupFailed(NO_MAKER) from None

    async def _scan(self, batch: list[_Waiter]) -> dict[Key, dict[str, Any]]:
        wanted = {w.key: w for w in batch}
        # Per key, the requests that pass every rule but, while the maker is not known yet, the maker's.
        candidates: dict[Key, list[dict[str, Any]]] = {}
        params = {"requestType": REQUEST_TYPE, "startDate": self._since.isoformat(), "sortBy": "startDate",
                  "sortOrder": "desc"}
        calls_before = self._caller.calls["list"]
        oldest = min(w.first_sent for w in batch)
        offset = self.offset
        margin = MARGIN_UNKNOWN_CLOCK if offset is None else MARGIN
        page = 0
        try:
            async with aclosing(list_pages(self._caller, params, self._page_size)) as pages:
                async for items, _, _ in pages:
                    page += 1
                    too_old = False
                    for item in items:
                        key = request_key(item)
                        waiter = wanted.get(key) if key is not None else None
                        if waiter is not None and adoptable(item, waiter.key, self.maker_user_id,
                                                            waiter.first_sent, offset):
                            candidates.setdefault(waiter.key, []).append(item)
                        stamped = parse_iso(item.get("startTime"))
                        if stamped is not None and stamped.timestamp() < oldest + (offset or 0.0) - margin:
                            too_old = True  # newest first: every later item is older still
                    if too_old or not wanted.keys() - candidates.keys():
                        break
            if candidates and self.maker_user_id is None:
                await self._ensure_maker()
        finally:
            self.list_calls += self._caller.calls["list"] - calls_before
        found: dict[Key, dict[str, Any]] = {}
        for key, items in candidates.items():
            ours = [i for i in items if same_user(i.get("userId"), self.maker_user_id)]
            if ours:
                found[key] = ours[-1]  # the oldest of them: the first send's
        self.adopted += len(found)
        log.debug("look-up of %d row(s) in doubt: %d found in %d page(s)", len(batch), len(found), page)
        return found
