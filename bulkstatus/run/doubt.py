"""Settling rows whose answer was lost: did the server create their request or not?

A connection that breaks after the request went out leaves the row *in doubt*. Before it is sent again,
the list endpoint is asked for this run's requests, and one that matches the row (identifier name and
value, label, and the maker's user id once known) is adopted instead of being doubled. Look-ups are
batched: rows in doubt wait together, and one paged pass, newest first, settles all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bulkstatus.api.bodies import REQUEST_TYPE
from bulkstatus.api.calls import ApiCaller, list_pages
from bulkstatus.errors import RunAborted
from bulkstatus.model import IDENTIFIER_NAMES, Row

log = logging.getLogger(__name__)
Key = tuple[str, str, str]
# How far before the earliest doubtful send a request may have been stamped and still be ours. Once the
# server's clock offset is learnt from an answer, only rounding (whole seconds) and network time remain.
MARGIN = timedelta(seconds=5)


class LookupFailed(Exception):
    """The list endpoint could not be read, so the row stays in doubt."""


def row_key(row: Row) -> Key:
    name = IDENTIFIER_NAMES.get(row.identifier_name.lower(), row.identifier_name)
    return (name, row.identifier_value, row.label)


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


def parse_server_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class _Waiter:
    key: Key
    sent_at: datetime
    future: asyncio.Future[dict[str, Any] | None] = field(repr=False)


class DoubtResolver:
    def __init__(self, caller: ApiCaller, run_started: datetime, settle: float, page_size: int = 100,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._caller = caller
        self._since: date = (run_started - timedelta(days=1)).date()
        self._settle = settle
        self._page_size = page_size
        self._sleep = sleep
        self._waiting: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self.maker_user_id: Any = None
        self.server_offset: timedelta | None = None  # server clock minus ours, learnt from answers
        self.list_calls = 0
        self.adopted = 0

    def learn(self, created: dict[str, Any]) -> None:
        """Learn the maker's user id and the server's clock offset from a create answer."""
        if self.maker_user_id is None and created.get("userId") is not None:
            self.maker_user_id = created.get("userId")
        if self.server_offset is None:
            stamped = parse_server_time(created.get("startTime"))
            if stamped is not None:
                self.server_offset = stamped - datetime.now(UTC)

    async def lookup(self, row: Row, sent_at: datetime | None = None) -> dict[str, Any] | None:
        """The request object the server holds for this row, or None; raises LookupFailed."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(row_key(row), sent_at or datetime.now(UTC), loop.create_future())
        self._waiting.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await waiter.future

    async def _run(self) -> None:
        # Let the server finish what it was doing, and let other rows in doubt join this pass.
        await self._sleep(self._settle)
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                found = await self._scan(batch)
            except LookupFailed as exc:
                for waiter in batch:
                    if not waiter.future.done():
                        waiter.future.set_exception(LookupFailed(str(exc)))
                continue
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_result(found.get(waiter.key))

    async def _scan(self, batch: list[_Waiter]) -> dict[Key, dict[str, Any]]:
        wanted = {w.key for w in batch}
        oldest = min(w.sent_at for w in batch) - MARGIN
        if self.server_offset is not None:
            oldest += self.server_offset
        found: dict[Key, dict[str, Any]] = {}
        params = {"requestType": REQUEST_TYPE, "startDate": self._since.isoformat(), "sortBy": "startDate",
                  "sortOrder": "desc"}
        calls_before = self._caller.calls["list"]
        page = 0
        try:
            async with aclosing(list_pages(self._caller, params, self._page_size)) as pages:
                async for items, _, _ in pages:
                    page += 1
                    too_old = False
                    for item in items:
                        key = request_key(item)
                        if key in wanted and key not in found and self._ours(item):
                            found[key] = item
                        stamped = parse_server_time(item.get("startTime"))
                        if self.server_offset is not None and stamped is not None and stamped < oldest:
                            too_old = True
                    if too_old or not wanted - found.keys():
                        break
        except RunAborted as exc:
            raise LookupFailed(str(exc)) from None
        finally:
            self.list_calls += self._caller.calls["list"] - calls_before
        self.adopted += len(found)
        log.debug("look-up of %d row(s) in doubt: %d found in %d page(s)", len(batch), len(found), page)
        return found

    def _ours(self, item: dict[str, Any]) -> bool:
        return self.maker_user_id is None or item.get("userId") == self.maker_user_id
