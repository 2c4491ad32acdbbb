"""One row's way through the API: pace, send, classify the answer, retry, settle doubts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bulkstatus.api.backoff import RETRYABLE_STATUSES, RetryPolicy
from bulkstatus.api.bodies import BodyBuilder
from bulkstatus.api.client import Answer, SendError, WorkflowClient
from bulkstatus.api.pacer import Pacer
from bulkstatus.errors import RunAborted
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.control import Health, StopControl
from bulkstatus.run.doubt import DoubtResolver, LookupFailed
from bulkstatus.run.journal import Recorder

log = logging.getLogger(__name__)
RETRY_WITH_NEW_CREDENTIALS = object()  # _judge's answer after a 401 that a refresh may cure


_stamp_second = -1  # the whole second whose text ``_stamp_prefix`` holds
_stamp_prefix = ""


def utc_now() -> str:
    """Now in UTC to the millisecond, ``2026-11-29T09:30:00.123Z`` (one per result: the text of the
    second is formatted once a second, not once a row)."""
    global _stamp_second, _stamp_prefix
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _stamp_second = second
    return f"{_stamp_prefix}.{int((now - second) * 1000):03d}Z"


@dataclass
class Sender:
    client: WorkflowClient
    pacer: Pacer
    policy: RetryPolicy
    builder: BodyBuilder
    recorder: Recorder
    resolver: DoubtResolver
    health: Health
    stop: StopControl
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    sent: int = 0  # create requests sent
    retries: int = 0
    throttled: int = 0

    async def submit(self, row: Row, in_doubt: datetime | None = None) -> Result:
        """Send one row until it has a final outcome; never raises for anything the server says.

        ``in_doubt``: the row was sent at that time by a run that stopped before the answer came.
        """
        body = self.builder.body(row)
        attempts = 0  # requests sent for this row
        failures = 0  # failed attempts that count against --max-retries (429s and auth refreshes do not)
        last: tuple[int | None, str, str] = (None, "", "")
        doubt_since = in_doubt  # when the request whose answer was lost was sent
        auth_retried = False
        while True:
            if doubt_since is not None:
                adopted = await self._settle(row, doubt_since, attempts)
                if adopted is not None:
                    return adopted
                doubt_since = None
            if failures > self.policy.max_retries:
                return self._result(row, Outcome.FAILED, attempts, *last)
            if self.stop.stopping:
                return self._unprocessed(row, attempts, last)
            await self.pacer.acquire()
            if self.stop.stopping:
                return self._unprocessed(row, attempts, last)
            attempts += 1
            self.sent += 1
            if attempts > 1:
                self.retries += 1
            sent_at = self.recorder.sending(row.number)  # a datetime only if the answer is lost
            try:
                answer = await self.client.create(body)
            except RunAborted as exc:  # e.g. a new OAuth token could not be generated
                self.stop.abort(str(exc))
                return self._unprocessed(row, attempts, (None, "", str(exc)))
            except SendError as exc:
                self.health.observe(False)
                last = (None, "", exc.kind)
                if exc.in_doubt and doubt_since is None:
                    doubt_since = datetime.fromtimestamp(sent_at, UTC)
                failures += 1
                log.debug("row %d: attempt %d got no answer (%s)%s", row.number, attempts, exc.kind,
                          "; it may exist, so it is looked up before a resend" if exc.in_doubt else "")
                await self._backoff(failures, None)
                continue
            outcome = await self._judge(row, answer, attempts, auth_retried)
            if outcome is RETRY_WITH_NEW_CREDENTIALS:
                auth_retried = True
                continue
            if isinstance(outcome, Result):
                return outcome
            assert isinstance(outcome, tuple)
            last = outcome
            if answer.status == 429:
                log.debug("row %d: throttled (429); every worker pauses", row.number)
                continue  # the pacer's pause holds every worker; throttling is bounded by --abort-after
            failures += 1
            log.debug("row %d: attempt %d answered HTTP %d %s; retry %d of %d", row.number, attempts,
                      answer.status, last[2], failures, self.policy.max_retries)
            await self._backoff(failures, answer.retry_after if answer.status == 503 else None)

    async def _judge(self, row: Row, answer: Answer, attempts: int,
                     auth_retried: bool) -> Result | object | tuple[int | None, str, str]:
        status = answer.status
        created = answer.payload
        if status == 200 and created is not None and created.get("requestId"):
            self.health.observe(True)
            self.resolver.learn(created)
            return self._result(row, Outcome.SUBMITTED, attempts, status, "", "",
                                str(created.get("requestId")), str(created.get("state") or ""))
        code, message = answer.error()
        if status == 401:
            if not auth_retried and await self.client.credentials.refresh(
                self.client.http, answer.credential_version
            ):
                return RETRY_WITH_NEW_CREDENTIALS
            self.stop.abort("the API refused the credentials (HTTP 401) even after reading them again: "
                            "check BULKSTATUS_UI_TOKEN (or its file) and the gateway credentials")
            return self._unprocessed(row, attempts, (status, code, message))
        if status in (403, 404):
            what = "not authorised (403)" if status == 403 else "not found (404)"
            self.stop.abort(f"the create endpoint answered {what}: {message or 'no message'}; check "
                            "--base-url, --org-id and that the user has CanMakeRequest")
            return self._unprocessed(row, attempts, (status, code, message))
        if status in RETRYABLE_STATUSES:
            self.health.observe(False)
            if status == 429:
                self.throttled += 1
                self.pacer.pause(answer.retry_after if answer.retry_after is not None
                                 else self.policy.wait(min(attempts, 3)))
            return (status, code, message)
        self.health.observe(True)
        if status == 200:
            message = message if created is None else "answer had no requestId"
            return self._result(row, Outcome.FAILED, attempts, status, code,
                                f"HTTP 200 but {message or 'no request in the answer'}")
        return self._result(row, Outcome.FAILED, attempts, status, code, message)

    async def _settle(self, row: Row, since: datetime, attempts: int) -> Result | None:
        """Look up a row in doubt; adopt the request the server already has."""
        try:
            found = await self.resolver.lookup(row, since)
        except LookupFailed as exc:
            return self._result(row, Outcome.UNPROCESSED, attempts, None, "",
                                f"in doubt: the answer was lost and the look-up failed ({exc}); "
                                "resume the run to look it up again")
        if found is None:
            return None
        log.info("row %d: adopted request %s created before the connection broke", row.number,
                 found.get("requestId"))
        return self._result(row, Outcome.SUBMITTED, attempts, None, "",
                            "adopted: the answer was lost but the server had created the request",
                            str(found.get("requestId") or ""), str(found.get("state") or ""))

    async def _backoff(self, failures: int, retry_after: float | None) -> None:
        if failures <= self.policy.max_retries:
            await self.sleep(self.policy.wait(failures, retry_after))

    def _unprocessed(self, row: Row, attempts: int, last: tuple[int | None, str, str]) -> Result:
        note = "not sent: the run stopped before this row" if attempts == 0 else (
            f"the run stopped after {attempts} attempt(s); last error: {last[2] or 'none'}")
        return self._result(row, Outcome.UNPROCESSED, attempts, last[0], last[1], note)

    @staticmethod
    def _result(row: Row, outcome: Outcome, attempts: int, status: int | None, code: Any, error: str,
                request_id: str = "", state: str = "") -> Result:
        return Result(row, outcome, request_id, state, status, str(code or ""), error, attempts, utc_now())
