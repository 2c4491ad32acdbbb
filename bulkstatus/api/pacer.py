"""Even pacing of request starts, shared by every worker.

``AsyncLimiter(R, 1)`` lets R requests through at once and then R more a second later, so a window that
straddles the refill sees up to 2R. This pacer hands out *slots* on an even schedule instead: slot k is
due ``interval`` after slot k-1. A loop that wakes a little late may catch up on the schedule (so the pace
is kept, not lost to timer lateness), but a log of the last ``count`` starts guarantees the rule itself:
no window of one period ever holds more than ``count`` starts. After an idle spell the schedule starts
again from now, so idleness never turns into a burst. It also carries
the two things a limiter does not: a pause that holds every worker (a 429 answer, Retry-After), and an
adaptive factor that slows everyone down while the server throttles and recovers gradually.

The clock and sleep are injectable, so tests drive it with a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bulkstatus.settings import Rate

CATCH_UP = 0.005  # seconds of timer lateness the schedule makes up for (the event loop wakes in ms steps)
# The window each ``count`` starts must fill is a little longer than the period: the server counts
# arrivals, and the way there (scheduling, the network) shifts each request by a few ms, which was
# enough to put count + 1 arrivals into one period of an exactly even pace. 1% of the period, at most
# 0.25 s: 10 ms at N/s, 0.25 s at N/min; the pace is that much (1% or less) below the rate.
WINDOW_MARGIN = 0.01
WINDOW_MARGIN_MAX = 0.25
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Grants request starts no faster than the configured rate, evenly spaced."""

    # After a 429 the pace drops to this share of the current one (at most once per ``recover_after``
    # seconds, so that a burst of 429s from one overload counts once); each quiet ``recover_after``
    # seconds it climbs back by ``RECOVER_STEP`` of the configured pace, never above it.
    BACKOFF_FACTOR = 0.7
    MIN_FACTOR = 0.05
    RECOVER_STEP = 0.1

    __slots__ = (
        "_clock",
        "_factor",
        "_last_throttle",
        "_lock",
        "_log",
        "_next",
        "_paused_until",
        "_sleep",
        "_window",
        "granted",
        "rate",
        "recover_after",
        "throttled",
    )

    def __init__(
        self,
        rate: Rate,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        recover_after: float = 1.0,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = float("-inf")  # when the next slot is due on the even schedule
        # The last ``count`` starts: the oldest must be a full period ago before another may start.
        self._log: deque[float] = deque(maxlen=max(rate.count, 1))
        self._window = rate.period + min(WINDOW_MARGIN * rate.period, WINDOW_MARGIN_MAX)
        self._paused_until = float("-inf")
        self._factor = 1.0
        self._last_throttle = float("-inf")
        self.recover_after = recover_after
        self.granted = 0
        self.throttled = 0

    @property
    def interval(self) -> float:
        """Seconds between two starts at the current (possibly reduced) pace."""
        if self.rate.unlimited:
            return 0.0
        # Rounded up, so that ``count`` intervals never add up to less than one period.
        return math.nextafter(self.rate.period / (self.rate.count * self._factor), math.inf)

    @property
    def effective_per_second(self) -> float:
        return float("inf") if self.rate.unlimited else self.rate.per_second * self._factor

    async def acquire(self) -> float:
        """Wait for a slot; return the time it was granted (by the pacer's clock)."""
        if self.rate.unlimited and self._paused_until == float("-inf"):
            self.granted += 1
            return self._clock()
        # One waiter at a time takes the next slot, so slots go out in order and never two at once.
        async with self._lock:
            while True:
                self._recover()
                now = self._clock()
                start = max(self._next, self._paused_until, now)
                if len(self._log) == self._log.maxlen and not self.rate.unlimited:
                    # Rounded up: float addition must not squeeze one more start into the window.
                    start = max(start, math.nextafter(self._log[0] + self._window, math.inf))
                if start <= now:
                    break
                await self._sleep(start - now)
            interval = self.interval
            # On schedule, or late by no more than timer granularity: the next slot is due one interval
            # after this one's due time, so lateness is caught up. Later than that (idle, or a pause):
            # the schedule starts again from now.
            on_time = now - self._next < max(interval, CATCH_UP)
            self._next = math.nextafter((self._next if on_time else now) + interval, math.inf)
            self._log.append(now)
            self.granted += 1
            return now

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a 429 or Retry-After) and lower the pace."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self.throttled += 1
        if not self.rate.unlimited and now - self._last_throttle >= self.recover_after:
            self._factor = max(self.MIN_FACTOR, self._factor * self.BACKOFF_FACTOR)
            self._last_throttle = now

    def _recover(self) -> None:
        if self._factor >= 1.0:
            return
        now = self._clock()
        steps = int((now - self._last_throttle) // self.recover_after)
        if steps > 0:
            self._factor = min(1.0, self._factor + self.RECOVER_STEP * steps)
            self._last_throttle += steps * self.recover_after
