"""The one retry loop: every call (create, decide, list, get, oauth) paced, judged by ``policy.judge``,
and retried, refreshed, settled or stopped by the verdict.

- Each attempt takes a pacer slot; ``calls`` counts attempts by kind (the "API calls" figures).
- RETRY waits the backoff (``backoff.RetryPolicy``; a Retry-After header wins) and counts against
  ``--max-retries``. THROTTLED (429) pauses every worker through the pacer and does not use up the
  call's retries (at most ``MAX_THROTTLES`` in a row, so a server that throttles for ever ends the call).
- REFRESH reads the credentials again, once per call; a 401 after that is an ABORT.
- IN_DOUBT (a create or decision whose answer was lost) is handed to the caller's ``settle``, which
  looks the request up; only when the server does not hold it is the call sent again.
- ABORT raises ``RunAborted`` with the policy's line saying what to fix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkstatus.api.auth import Credentials
from bulkstatus.api.backoff import RetryPolicy
from bulkstatus.api.bodies import CREATE_PATH, REQUESTS_PATH
from bulkstatus.api.client import Answer, HttpClient, NoAnswer
from bulkstatus.api.pacer import Pacer
from bulkstatus.api.policy import Judgement, Kind, Verdict, judge, refused_credentials
from bulkstatus.errors import RunAborted
from bulkstatus.jsonio import dumps
from bulkstatus.settings import Settings

log = logging.getLogger(__name__)
LONG_PAUSE = 30.0  # a 429 pause longer than this is said in the log

MAX_THROTTLES = 100
# (first send, last send) as wall-clock seconds -> the request object the server holds, or None.
Settle = Callable[[float, float], Awaitable[dict[str, Any] | None]]
JSON_ONLY: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(
    {"Content-Type": "application/json", "Accept": "application/json"}))


class Watcher:
    """What the loop tells about each attempt: a run's health watch and stop flag implement this."""

    def observe(self, ok: bool) -> None:
        """``ok``: the attempt got an answer that is not a passing failure."""

    def attempt(self, answer: str, seconds: float | None) -> None:
        """A create attempt's answer (its HTTP status, or how it went without one) and latency (s)."""

    def paused(self, seconds: float) -> None:
        """The server asked for a pause of ``seconds`` (a 429)."""

    @property
    def stopping(self) -> bool:
        return False


def server_offset(date_header: str) -> float | None:
    """The server's clock (an HTTP Date header, to the second) minus ours, in seconds."""
    try:
        return parsedate_to_datetime(date_header).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


@dataclass(slots=True)
class Settled:
    """What one call came to: DONE or FINAL, or the last verdict when retries ran out."""

    judgement: Judgement
    answer: Answer | None
    attempts: int
    failure: str = ""  # why the last attempt got no answer, if it got none
    adopted: dict[str, Any] | None = None  # after a lost answer: the request the look-up found
    stopped: bool = False  # the run stopped before the call was done

    @property
    def done(self) -> bool:
        return self.judgement.verdict is Verdict.DONE

    def error(self) -> tuple[int | None, str, str]:
        """(HTTP status, error code, message) of the last attempt, for a result row."""
        if self.answer is None:
            return None, "", self.failure
        code, message = self.answer.error()
        return self.answer.status, code, message


class Caller:
    """Paced, judged, retried calls to one API, over one HTTP client."""

    def __init__(self, http: HttpClient, base_url: str, credentials: Credentials, pacer: Pacer,
                 policy: RetryPolicy, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 watcher: Watcher | None = None) -> None:
        base = base_url.rstrip("/")
        self.http = http
        self.credentials = credentials
        self.pacer = pacer
        self.policy = policy
        self.sleep = sleep
        self.watcher = watcher or Watcher()
        self._create_url = URL(base + CREATE_PATH)
        self._requests_url = URL(base + REQUESTS_PATH)
        self.calls: Counter[str] = Counter()  # attempts by kind
        self.retries = 0  # attempts after the first, every kind
        self.throttled = 0  # 429 answers, every kind
        self.server_clock_offset: float | None = None  # the server's Date header minus our clock, seconds
        credentials.bind(self._oauth)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    async def create(self, body: bytes, settle: Settle, before_send: Callable[[], float]) -> Settled:
        return await self.call("create", "POST", self._create_url, body, settle=settle, before_send=before_send,
                               stoppable=True)

    async def decide(self, body: dict[str, Any], settle: Settle) -> Settled:
        return await self.call("decide", "PUT", self._create_url, dumps(body), settle=settle)

    async def get(self, request_id: str) -> Settled:
        return await self.call("get", "GET", self._requests_url / request_id)

    async def list(self, params: dict[str, str]) -> Settled:
        return await self.call("list", "GET", self._requests_url.with_query(params))

    async def _oauth(self, url: str, body: bytes) -> Settled:
        return await self.call("oauth", "POST", URL(url), body, auth=False)

    async def call(self, kind: Kind, method: str, url: URL, body: bytes | None = None, *, auth: bool = True,
                   settle: Settle | None = None, before_send: Callable[[], float] | None = None,
                   stoppable: bool = False) -> Settled:
        attempts = failures = throttles = 0
        refreshed = doubted = False
        first_sent = 0.0
        watcher = self.watcher
        while True:
            if stoppable and watcher.stopping:
                return Settled(Judgement(Verdict.RETRY), None, attempts, "the run stopped", stopped=True)
            await self.pacer.acquire()
            if stoppable and watcher.stopping:
                return Settled(Judgement(Verdict.RETRY), None, attempts, "the run stopped", stopped=True)
            headers, version = await self.credentials.headers() if auth else (JSON_ONLY, 0)
            # (counted once its journal line is written: a line that cannot be written sends nothing)
            sent = before_send() if before_send is not None else time.time()
            attempts += 1
            self.calls[kind] += 1
            if attempts > 1:
                self.retries += 1
            first_sent = first_sent or sent
            outcome: Answer | NoAnswer
            asked = time.monotonic()
            try:
                outcome = await self.http.request(method, url, headers, body)
            except NoAnswer as exc:
                outcome = exc
            if stoppable:
                if isinstance(outcome, Answer):
                    watcher.attempt(str(outcome.status), time.monotonic() - asked)
                else:
                    watcher.attempt(outcome.kind, None)
            judgement = judge(kind, outcome)
            answer = outcome if isinstance(outcome, Answer) else None
            failure = outcome.kind if isinstance(outcome, NoAnswer) else ""
            verdict = judgement.verdict
            if answer is not None:
                if verdict is not Verdict.THROTTLED:
                    self.pacer.answered()
                if self.server_clock_offset is None and answer.date and kind != "oauth":  # the API's host
                    self.server_clock_offset = server_offset(answer.date)
            if stoppable:  # a run's health is the health of its creates
                watcher.observe(verdict not in (Verdict.RETRY, Verdict.THROTTLED, Verdict.IN_DOUBT))
            if verdict is Verdict.DONE:
                return Settled(judgement, answer, attempts)
            if verdict is Verdict.FINAL:
                return await self._last_look(judgement, answer, attempts, failure, settle, first_sent, doubted)
            if verdict is Verdict.ABORT:
                raise RunAborted(judgement.why, judgement.cause)
            if verdict is Verdict.REFRESH:
                # A call made without the credentials (OAuth itself) has nothing to refresh.
                if not auth or refreshed or not await self.credentials.refresh(version):
                    raise RunAborted(refused_credentials(kind), "credentials")
                refreshed = True
                continue
            retry_after = answer.retry_after if answer is not None else None
            if verdict is Verdict.THROTTLED:
                throttles += 1
                self.throttled += 1
                pause = retry_after if retry_after is not None else self.policy.wait(min(throttles, 3))
                if pause > LONG_PAUSE:
                    log.warning("the server asked to wait %.0f s before the next request (429 Retry-After)", pause)
                self.pacer.throttled(pause)
                if stoppable:
                    watcher.paused(pause)
                if throttles >= MAX_THROTTLES:
                    return await self._last_look(judgement, answer, attempts, failure, settle, first_sent, doubted)
                continue  # the pacer's pause holds this call too
            throttles = 0
            if verdict is Verdict.IN_DOUBT:
                if settle is None:
                    return Settled(judgement, answer, attempts, failure)
                doubted = True
                # --doubt-settle counts from the moment the answer was lost, not from the send.
                found = await settle(first_sent, time.time())
                if found is not None:
                    return Settled(Judgement(Verdict.DONE), answer, attempts, failure, adopted=found)
            failures += 1
            if failures > self.policy.max_retries:
                return await self._last_look(judgement, answer, attempts, failure, settle, first_sent, doubted)
            await self.sleep(self.policy.wait(failures, retry_after))

    async def _last_look(self, judgement: Judgement, answer: Answer | None, attempts: int, failure: str,
                         settle: Settle | None, first_sent: float, doubted: bool) -> Settled:
        """A call that ends without success after an attempt in doubt: that attempt may have created the
        request after all (a late listing), so it is looked up once more before the call is called failed."""
        if doubted and settle is not None:
            found = await settle(first_sent, time.time())
            if found is not None:
                return Settled(Judgement(Verdict.DONE), answer, attempts, failure, adopted=found)
        return Settled(judgement, answer, attempts, failure)


@asynccontextmanager
async def open_caller(settings: Settings, watcher: Watcher | None = None) -> AsyncIterator[Caller]:
    """Connections, credentials, pacer and retry policy built from the settings."""
    http = HttpClient(limit=settings.get("concurrency") or 1, timeout=settings.get("timeout"),
                      use_proxy_env=not settings.get("sandbox"))
    try:
        policy = RetryPolicy(settings.get("max-retries"), settings.get("backoff"), settings.get("backoff-max"))
        yield Caller(http, settings.get("base-url"), Credentials(settings), Pacer(settings.get("rate")), policy,
                     watcher=watcher)
    finally:
        await http.close()
