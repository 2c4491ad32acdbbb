"""What the simulator served, counted for its terminal: one `Served` per call, tallied per interval.

Only `bulkstatus sandbox` attaches a Monitor (an aiohttp middleware then observes every API call, the
`/__sim/` controls excepted); the tests' and `run --sandbox`'s simulators run without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bulkstatus.sim.responses import error_of
from bulkstatus.sim.state import ReceivedCall

# Request keys the handlers set for the middleware: the create call as recorded, and what a call was about.
CALL_KEY: web.RequestKey[ReceivedCall] = web.RequestKey("call", ReceivedCall)
SUBJECT_KEY = web.RequestKey("subject", str)

# A create's ReceivedCall.outcome -> the monitor's word for it.
_CREATE_OUTCOMES = {"rejected": "refused", "not-found": "refused"}


@dataclass(frozen=True, slots=True)
class Served:
    """One API call and its answer."""

    kind: str  # create, decide, list, get, oauth, or other (a path the simulator does not serve)
    status: int | None  # None: the connection was closed without an answer
    outcome: str  # accepted, ok, refused, rate-limited, transient-error, dropped-before, dropped-after
    seconds: float  # from the call's arrival to its answer
    subject: str = ""  # "mobile 919780375690" for a create, a requestId for get and decide
    code: int | None = None  # the error answer's code and message
    message: str | None = None


def outcome_of(kind: str, status: int | None, call: ReceivedCall | None) -> str:
    """The outcome of a call: a create's as the handler recorded it, any other's from its status."""
    if call is not None:
        return _CREATE_OUTCOMES.get(call.outcome, call.outcome)
    if status is None:
        return "dropped-before"
    if status < 400:
        return "ok"
    if status == 429:
        return "rate-limited"
    return "transient-error" if status >= 500 else "refused"


def _identifier(call: ReceivedCall) -> str:
    shown = call.summary()
    name, value = shown["identifierName"], shown["identifierValue"]
    return "" if name is None and value is None else f"{name} {value}"


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls per (kind, outcome) over `seconds`."""

    counts: Counter[tuple[str, str]]
    seconds: float

    @property
    def calls(self) -> int:
        return sum(self.counts.values())


class Monitor:
    """Counts each call served, since the start and since the last `take()`; `listener` hears each one."""

    __slots__ = ("_clock", "_interval", "_interval_start", "listener", "started", "total")

    def __init__(self, clock: Callable[[], float], listener: Callable[[Served], None] | None = None) -> None:
        self._clock = clock
        self.listener = listener
        self.started = self._interval_start = clock()
        self.total: Counter[tuple[str, str]] = Counter()
        self._interval: Counter[tuple[str, str]] = Counter()

    def observe(self, served: Served) -> None:
        key = (served.kind, served.outcome)
        self.total[key] += 1
        self._interval[key] += 1
        if self.listener is not None:
            self.listener(served)

    def take(self) -> Tally:
        """The calls since the last take (or the start), and start a new interval."""
        now = self._clock()
        tally = Tally(self._interval, now - self._interval_start)
        self._interval, self._interval_start = Counter(), now
        return tally

    def so_far(self) -> Tally:
        return Tally(Counter(self.total), self._clock() - self.started)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
            kind = request.match_info.route.name or "other"
            if kind.startswith("sim-"):
                return await handler(request)
            arrived = self._clock()
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's own 404 / 405 for a path or method not served
                self.observe(Served(kind, exc.status, outcome_of(kind, exc.status, None), self._clock() - arrived,
                                    f"{request.method} {request.path}", None, exc.reason))
                raise
            call: ReceivedCall | None = request.get(CALL_KEY)
            status = response.status if call is None else call.status
            code, message = error_of(response) if status is not None else (None, None)
            subject = request.get(SUBJECT_KEY, "") if call is None else _identifier(call)
            self.observe(Served(kind, status, outcome_of(kind, status, call), self._clock() - arrived,
                                subject, code, message))
            return response

        return observe
