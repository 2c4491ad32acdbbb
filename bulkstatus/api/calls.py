"""Reading requests back after they were made: paced, retried calls, the paged list, and current states.

``track``, ``approve`` and the pending check before a run share this. Every HTTP attempt takes a slot
of the same kind of ``Pacer`` a run uses and is retried on the same statuses with the same policy; the
caller counts attempts per kind, which is the "API calls" figure ``track`` reports.

Finding the state of many requests: one page of the list endpoint holds up to ``list-limit`` (500)
requests, a GET holds one. ``current_states`` lists the requests of the type, newest first, from a day
before the run started, and stops as soon as every wanted id was seen, or as soon as the pages left
outnumber the ids still missing (then a GET each is cheaper). Ids older than that window (a
``pending-exists`` row points at an earlier run's request) get one more, undated pass under the same
rule. What is still missing is fetched one by one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from bulkstatus.api.auth import Credentials
from bulkstatus.api.backoff import RETRYABLE_STATUSES, RetryPolicy
from bulkstatus.api.bodies import REQUEST_TYPE
from bulkstatus.api.client import Answer, SendError, WorkflowClient
from bulkstatus.api.pacer import Pacer
from bulkstatus.api.transport import HttpClient
from bulkstatus.errors import RunAborted
from bulkstatus.settings import Settings

PENDING = "AdminTask"
FINAL_STATES = frozenset({"approved", "rejected", "failed"})
NOT_FOUND = "not-found"  # our own mark: the API answered 404 for the requestId
# The settings a command that only reads or decides requests needs (no entity ids, no inner task).
API_SETTINGS = frozenset({
    "base-url", "org-id", "ui-token", "api-user", "api-password", "oauth-key", "oauth-secret", "oauth-url",
    "rate", "concurrency", "max-retries", "timeout", "backoff", "backoff-max", "list-limit",
})


class CallFailed(Exception):
    """No answer after every retry. ``in_doubt``: the last attempt may have reached the server."""

    def __init__(self, kind: str, in_doubt: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.in_doubt = in_doubt


@dataclass
class ApiCaller:
    """Paced, retried calls; ``calls`` counts HTTP attempts by kind (list, get, decide)."""

    client: WorkflowClient
    pacer: Pacer
    policy: RetryPolicy
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    async def call(self, kind: str, send: Callable[[], Awaitable[Answer]]) -> Answer:
        return (await self.call_noting_loss(kind, send))[0]

    async def call_noting_loss(self, kind: str, send: Callable[[], Awaitable[Answer]]) -> tuple[Answer, bool]:
        """The answer, and whether an earlier attempt got no answer after it may have reached the server.

        Retryable statuses come back as the last answer once retries run out; 401 is retried once after
        the credentials were read again. Raises CallFailed when the last attempt got no answer at all.
        """
        attempt, lost, auth_retried = 0, False, False
        while True:
            await self.pacer.acquire()
            attempt += 1
            self.calls[kind] += 1
            try:
                answer = await send()
            except SendError as exc:
                lost = lost or exc.in_doubt
                if attempt > self.policy.max_retries:
                    raise CallFailed(exc.kind, lost) from None
                await self.sleep(self.policy.wait(attempt))
                continue
            status = answer.status
            if status == 401 and not auth_retried:
                auth_retried = True
                if await self.client.credentials.refresh(self.client.http, answer.credential_version):
                    attempt -= 1
                    continue
            if status not in RETRYABLE_STATUSES or attempt > self.policy.max_retries:
                return answer, lost
            if status == 429:
                self.pacer.pause(answer.retry_after if answer.retry_after is not None
                                 else self.policy.wait(min(attempt, 3)))
            await self.sleep(self.policy.wait(attempt, answer.retry_after if status in (429, 503) else None))


@asynccontextmanager
async def open_caller(settings: Settings) -> AsyncIterator[ApiCaller]:
    """Connections, credentials, pacer and retry policy built from the settings."""
    http = HttpClient(limit=settings.get("concurrency") or 1, timeout=settings.get("timeout"))
    try:
        client = WorkflowClient(settings.get("base-url"), Credentials(settings), http)
        policy = RetryPolicy(settings.get("max-retries"), settings.get("backoff"), settings.get("backoff-max"))
        yield ApiCaller(client, Pacer(settings.get("rate")), policy)
    finally:
        await http.close()


def _list_failure(answer: Answer) -> str:
    code, message = answer.error()
    status = answer.status
    if status == 401:
        return ("the API refused the credentials listing requests (HTTP 401): check BULKSTATUS_UI_TOKEN "
                "(or its file) and the gateway credentials")
    if status == 403:
        return f"not authorised to list requests (HTTP 403 {code}): {message}; the user needs access to them"
    if status == 400:
        return f"the list endpoint refused the query ({message}): if it is about limit, lower --list-limit"
    return f"listing requests failed (HTTP {status} {code}: {message}): try again later"


async def list_pages(caller: ApiCaller, params: dict[str, str], page_size: int,
                     ) -> AsyncGenerator[tuple[list[dict[str, Any]], int, int], None]:
    """Each page as (items, totalPages, totalElements), PageNo 0 first; raises RunAborted on failure."""
    page = 0
    while True:
        query = {**params, "limit": str(page_size), "PageNo": str(page)}
        try:
            answer = await caller.call("list", partial(caller.client.list, query))
        except CallFailed as exc:
            raise RunAborted(f"listing requests failed ({exc.kind}): check --base-url and the network, "
                             "then try again") from None
        data = answer.data if isinstance(answer.data, dict) else {}
        items, pagination = data.get("data"), data.get("pagination")
        if answer.status != 200 or not isinstance(items, list):
            raise RunAborted(_list_failure(answer))
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


async def _scan(caller: ApiCaller, since: date | None, missing: set[str], lookup: Lookup,
                page_size: int) -> bool:
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
                    lookup.states[request_id] = str(item.get("state") or "")
                    missing.discard(request_id)
            page += 1
            # Newest first: new requests push older ones down a page, so one is seen twice, never skipped.
            if not missing or pages - page > len(missing):
                return page >= pages
    return True


async def _get_one(caller: ApiCaller, request_id: str, lookup: Lookup) -> None:
    try:
        answer = await caller.call("get", partial(caller.client.get, request_id))
    except CallFailed as exc:
        lookup.unchecked[request_id] = exc.kind
        return
    found = answer.payload
    if answer.status == 200 and found is not None and found.get("state"):
        lookup.states[request_id] = str(found["state"])
    elif answer.status == 404:
        lookup.states[request_id] = NOT_FOUND
    else:
        lookup.unchecked[request_id] = f"HTTP {answer.status}: {answer.error()[1]}"


async def for_each(items: Iterable[Any], workers: int, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``work`` on every item with at most ``workers`` at a time, without a task per item."""
    iterator: Iterator[Any] = iter(items)

    async def worker() -> None:
        for item in iterator:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))


def window_start(started_at: str) -> date | None:
    """The startDate filter for a run's requests: the day before the run started (UTC).

    A day earlier, so that the server's clock or a day boundary in its time zone cannot hide a request.
    """
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (started - timedelta(days=1)).date()


async def current_states(caller: ApiCaller, wanted: Iterable[str], since: date | None, page_size: int,
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
