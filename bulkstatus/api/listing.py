"""Reading requests back after they were made: the paged list, and the current state of many requests.

``track``, ``approve``, the pending check and the in-doubt look-up share this, through the same
``Caller`` a run uses (paced, judged, retried).

Finding the state of many requests: one page of the list endpoint holds up to ``list-limit`` (500)
requests, a GET holds one. ``current_states`` lists the requests of the type, newest first, from the
look-up window's start, and stops as soon as every wanted id was seen, or as soon as the pages left
outnumber the ids still missing (then a GET each is cheaper). Ids older than that window (a
``pending-exists`` row points at an earlier run's request) get one more, undated pass under the same
rule. What is still missing is fetched one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bulkstatus.api.bodies import REQUEST_TYPE
from bulkstatus.api.calls import Caller, Settled
from bulkstatus.api.reasons import request_reason
from bulkstatus.errors import BulkStatusError

PENDING = "AdminTask"
FINAL_STATES = frozenset({"approved", "rejected", "failed"})
NOT_FOUND = "not-found"  # our own mark: the API answered 404 for the requestId
# The settings a command that only reads or decides requests needs (no entity ids, no inner task).
API_SETTINGS = frozenset({
    "base-url", "org-id", "ui-token", "api-user", "api-password", "oauth-key", "oauth-secret", "oauth-url",
    "rate", "concurrency", "max-retries", "timeout", "backoff", "backoff-max", "list-limit",
})


class ListUnavailable(BulkStatusError):
    """The list endpoint kept failing with passing errors until the retries ran out."""


def window_start(started: datetime) -> date:
    """The first day whose requests may belong to a run that started at ``started`` (UTC).

    A day earlier, so that the server's clock or a day boundary in its time zone cannot hide a request.
    The one place that says how far back a run's requests are looked for.
    """
    return (started - timedelta(days=1)).date()


def describe(settled: Settled) -> str:
    status, code, message = settled.error()
    if status is None:
        return message or "no answer"
    return f"HTTP {status}{' ' + code if code else ''}: {message}"


async def list_pages(caller: Caller, params: dict[str, str], page_size: int,
                     ) -> AsyncGenerator[tuple[list[dict[str, Any]], int, int], None]:
    """Each page as (items, totalPages, totalElements), PageNo 0 first.

    Raises ``ListUnavailable`` when retries run out, ``RunAborted`` when the policy says stop.
    """
    page = 0
    while True:
        settled = await caller.list({**params, "limit": str(page_size), "PageNo": str(page)})
        if not settled.done or settled.answer is None:
            raise ListUnavailable(f"listing requests failed ({describe(settled)}): the API looks unavailable; "
                                  "try again later")
        data = settled.answer.data
        items, pagination = data.get("data"), data.get("pagination")
        pagination = pagination if isinstance(pagination, dict) else {}
        pages, total = pagination.get("totalPages"), pagination.get("totalElements")
        # Without pagination figures, keep asking until a page comes back short.
        pages = pages if isinstance(pages, int) else page + (2 if len(items) >= page_size else 1)
        yield [i for i in items if isinstance(i, dict)], pages, total if isinstance(total, int) else -1
        page += 1
        if not items or page >= pages:
            return


@dataclass
class Lookup:
    states: dict[str, str] = field(default_factory=dict)  # requestId -> state (NOT_FOUND for a 404)
    unchecked: dict[str, str] = field(default_factory=dict)  # requestId -> why it could not be looked up
    reasons: dict[str, str] = field(default_factory=dict)  # requestId -> why it was rejected or failed, if said

    def found(self, request_id: str, item: dict[str, Any]) -> None:
        self.states[request_id] = str(item.get("state") or "")
        reason = request_reason(item)
        if reason:
            self.reasons[request_id] = reason


async def _scan(caller: Caller, since: date | None, missing: set[str], lookup: Lookup, page_size: int) -> bool:
    """One pass over the list; True when it read every page of the window."""
    params = {"requestType": REQUEST_TYPE, "sortBy": "startDate", "sortOrder": "desc"}
    if since is not None:
        params["startDate"] = since.isoformat()
    page = 0
    async with aclosing(list_pages(caller, params, page_size)) as paged:
        async for items, pages, _ in paged:
            for item in items:
                request_id = str(item.get("requestId") or "")
                if request_id in missing:
                    lookup.found(request_id, item)
                    missing.discard(request_id)
            page += 1
            # Newest first: new requests push older ones down a page, so one is seen twice, never skipped.
            if not missing or pages - page > len(missing):
                return page >= pages
    return True


async def _get_one(caller: Caller, request_id: str, lookup: Lookup) -> None:
    settled = await caller.get(request_id)
    found = settled.answer.payload if settled.answer is not None else None
    if settled.done and found is not None and found.get("state"):
        lookup.found(request_id, found)
    elif settled.answer is not None and settled.answer.status == 404:
        lookup.states[request_id] = NOT_FOUND
    else:
        lookup.unchecked[request_id] = describe(settled)


async def for_each(items: Iterable[Any], workers: int, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``work`` on every item with at most ``workers`` at a time, without a task per item."""
    iterator: Iterator[Any] = iter(items)

    async def worker() -> None:
        for item in iterator:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))


async def current_states(caller: Caller, wanted: Iterable[str], since: date | None, page_size: int,
                         workers: int) -> Lookup:
    """The state of each wanted requestId: the list first (dated, then undated), then a GET each."""
    missing = set(wanted)
    lookup = Lookup()
    # An undated pass only when the dated one read its whole window and ids are still missing.
    whole = True
    for window in (since, None) if since is not None else (None,):
        if not missing or not whole:
            break
        whole = await _scan(caller, window, missing, lookup, page_size)
    await for_each(sorted(missing), workers, lambda request_id: _get_one(caller, request_id, lookup))
    return lookup
