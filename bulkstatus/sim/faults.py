"""Fault injection for create calls: rate limiting, dropped connections, transient errors, latency.

One `random.Random(seed)` decides every fault, so a seeded run injects the same faults in the same order
(given the same order of calls).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import orjson
from aiohttp import web

from bulkstatus.sim.responses import JSON, v2_error

# (HTTP status, v2 error code, message) of the transient errors the real platform is known to answer.
TRANSIENT_ERRORS: tuple[tuple[int, int, str], ...] = (
    (500, 500, "Internal server error"),
    (502, 502, "Bad gateway"),
    (503, 4001, "Authorization status unavailable"),
    (504, 504, "Gateway timeout"),
    (521, 521, "Multiple actions are running for the same customer"),
    (461, 461, "Search engine busy, please retry"),
)

_HTML_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


def format_seconds(seconds: float) -> str:
    """Retry-After value: whole seconds as an integer ("2"), fractions as a decimal ("0.05")."""
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"


class Faults:
    """The random source and the rate limiter's window of admitted create times."""

    __slots__ = ("_admitted", "_clock", "rng")

    def __init__(self, seed: int | None, clock: Callable[[], float]) -> None:
        self.rng = random.Random(seed)
        self._clock = clock
        # Clock readings of the creates admitted within the current window, oldest first.
        self._admitted: deque[float] = deque()

    def reseed(self, seed: int | None) -> None:
        self.rng.seed(seed)

    def chance(self, rate: float) -> bool:
        """True for a fraction `rate` of calls; no random number is drawn when rate is 0."""
        return rate > 0.0 and self.rng.random() < rate

    def admit(self, rate_limit: float, period: float = 1.0) -> bool:
        """Sliding window: at most `rate_limit` creates in any `period` seconds (below 1: one per
        period/rate s). `100` per `60` s is a per-minute limit, as the real API's are: a burst of 100 passes,
        the 101st waits for the first to leave the window."""
        if rate_limit >= 1.0:
            capacity, window = int(rate_limit), period
        else:
            capacity, window = 1, (period / rate_limit if rate_limit > 0 else float("inf"))
        now = self._clock()
        admitted = self._admitted
        while admitted and now - admitted[0] >= window:
            admitted.popleft()
        if len(admitted) >= capacity:
            return False
        admitted.append(now)
        return True

    def latency(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        if high <= 0.0:
            return 0.0
        return low if high == low else self.rng.uniform(low, high)

    def rate_limited(self, retry_after: float | None) -> web.Response:
        """429, with an empty body or a small JSON one, and Retry-After when configured."""
        headers = {} if retry_after is None else {"Retry-After": format_seconds(retry_after)}
        if self.rng.random() < 0.5:
            return web.Response(status=429, headers=headers)
        body = orjson.dumps({"errors": [{"code": 429, "message": "Too many requests"}]})
        return web.Response(status=429, body=body, content_type=JSON, headers=headers)

    def transient(self) -> web.Response:
        """A retryable error, in one of three bodies: the v2 error shape, an HTML page, or nothing."""
        status, code, message = self.rng.choice(TRANSIENT_ERRORS)
        shape = self.rng.randrange(3)
        if shape == 0 or status == 503:
            return v2_error(status, code, message)
        if shape == 1:
            page = _HTML_PAGE.format(status=status, reason=message)
            return web.Response(status=status, text=page, content_type="text/html")
        return web.Response(status=status)
