"""One row's way through the API: its create call through the one retry loop, and what it came to.

The loop (``api/calls.py``) paces, judges, retries and refreshes; this module gives it the row's body,
the journal line written before every attempt, and the look-up that settles a lost answer, and turns
the settled call into the row's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bulkstatus.api.bodies import BodyBuilder
from bulkstatus.api.calls import Caller, Settled
from bulkstatus.api.policy import Verdict
from bulkstatus.errors import RunAborted
from bulkstatus.jsonio import dumps
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.control import StopControl
from bulkstatus.run.doubt import DoubtResolver, LookupFailed
from bulkstatus.run.journal import Recorder
from bulkstatus.timestamps import stamp_ms

log = logging.getLogger(__name__)
ADOPTED = "adopted: the answer was lost but the server had created the request"


@dataclass
class Sender:
    caller: Caller
    builder: BodyBuilder
    recorder: Recorder
    resolver: DoubtResolver
    stop: StopControl

    async def submit(self, row: Row, in_doubt: float | None = None) -> Result:
        """Send one row until it has a final outcome; never raises for anything the server says.

        ``in_doubt``: the row was first sent at that time (epoch seconds) by a session that stopped
        before its answer came; it is looked up before anything is sent.
        """
        body = dumps(self.builder.body(row))
        sends = 0
        sent_at = 0.0

        def before_send() -> float:
            nonlocal sends, sent_at
            sends += 1
            sent_at = self.recorder.sending(row.number)  # the in-flight line reaches the OS first
            return sent_at

        async def settle(first_sent: float, lost_at: float) -> dict[str, Any] | None:
            return await self.resolver.lookup(row, in_doubt if in_doubt is not None else first_sent, lost_at)

        try:
            if in_doubt is not None:
                found = await self.resolver.lookup(row, in_doubt, in_doubt)
                if found is not None:
                    return self._adopted(row, found, 0)
            settled = await self.caller.create(body, settle, before_send)
        except LookupFailed as exc:
            return _result(row, Outcome.UNPROCESSED, sends, None, "",
                           f"in doubt: the answer was lost and the look-up failed ({exc}); resume the run to "
                           "look it up again")
        except RunAborted as exc:  # credentials refused, a proxy down, a wrong base URL...
            self.stop.abort(str(exc))
            return _unprocessed(row, sends, str(exc))
        return self._outcome(row, settled, sent_at)

    def _outcome(self, row: Row, settled: Settled, sent_at: float) -> Result:
        attempts = settled.attempts
        if settled.adopted is not None:
            return self._adopted(row, settled.adopted, attempts)
        status, code, message = settled.error()
        if settled.stopped:
            return _unprocessed(row, attempts, message if attempts else "")
        if settled.done:
            created = settled.answer.payload if settled.answer is not None else None
            assert created is not None
            self.resolver.learn(created, sent_at)
            if self.resolver.maker_conflict is not None:
                self.stop.abort(self.resolver.maker_conflict)
            return _result(row, Outcome.SUBMITTED, attempts, status, "", "", str(created["requestId"]),
                           str(created.get("state") or ""))
        transient = settled.judgement.verdict is not Verdict.FINAL
        if transient:
            message = f"retries ran out ({attempts} attempts); last: {message or f'HTTP {status}'}"
        log.debug("row %d: failed after %d attempt(s): %s", row.number, attempts, message)
        return _result(row, Outcome.FAILED, attempts, status, code, message, transient=transient)

    def _adopted(self, row: Row, found: dict[str, Any], attempts: int) -> Result:
        log.info("row %d: adopted request %s created before its answer was lost", row.number,
                 found.get("requestId"))
        return _result(row, Outcome.SUBMITTED, attempts, None, "", ADOPTED, str(found.get("requestId") or ""),
                       str(found.get("state") or ""))


def _unprocessed(row: Row, attempts: int, last: str) -> Result:
    note = "not sent: the run stopped before this row" if attempts == 0 else (
        f"the run stopped after {attempts} attempt(s); last error: {last or 'none'}")
    return _result(row, Outcome.UNPROCESSED, attempts, None, "", note)


def _result(row: Row, outcome: Outcome, attempts: int, status: int | None, code: Any, error: str,
            request_id: str = "", state: str = "", transient: bool = False) -> Result:
    return Result(row, outcome, request_id, state, status, str(code or ""), error, attempts, stamp_ms(), transient)
