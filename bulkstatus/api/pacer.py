"""Even pacing of request starts, shared by every worker.

``AsyncLimiter(R, 1)`` lets R requests through at once and then R more a second later, so a window that
straddles the refill sees up to 2R. This pacer hands out *slots* on an even schedule instead: slot k is
due ``interval`` after slot k-1. A loop that wakes a little late may catch up on the schedule (so the pace
is kept, not lost to timer lateness), but a log of the last ``count`` starts guarantees the rule itself:
no window of one period ever holds more than ``count`` starts. After an idle spell the schedule starts
again from now, so idleness never turns into a burst. It also carries
what a limiter does not: a pause that holds every worker (a 429 answer, Retry-After), and a pace that
learns what the server allows.

Learning the server's limit. Each answer that was not a 429 is noted (``answered``). On a 429 the pacer
counts the answers of the last period: that is how many the server let through in a window, so the
pace drops to ``SAFE`` (97%) of it (by ``BACKOFF``, 10%, when nothing was let through at all; a
limit counted over a longer window than ours is found in a few such steps). Then, each quiet second, the pace
climbs back by a tenth of that estimate up to 97% of it, and from there it probes only by 2% every
``PROBE_EVERY`` seconds, up to the configured rate: the quota is used to within a few percent with a
429 (and its pause) about once in two minutes, instead of throttling every few seconds. With
``--rate 0`` (unlimited) the same estimate turns into a pace after the first 429.

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
    """Grants request starts no faster than the configured rate (or what the server allows), evenly spaced."""

    SAFE = 0.97  # share of the estimated allowance the pace settles at
    BACKOFF = 0.9  # on a 429 the pace is at most this share of what it was
    MAX_CUT = 0.5  # ...and at least this share, whatever few answers the last period held
    MIN_PER_SECOND = 0.01  # never slower than one start in 100 s
    RECOVER_STEP = 0.1  # share of the estimate the pace climbs by, each quiet ``recover_after``
    PROBE_STEP = 1.02
    PROBE_EVERY = 30.0

    __slots__ = (
        "_answered",
        "_clock",
        "_configured",
        "_last_adjust",
        "_lock",
        "_log",
        "_next",
        "_next_step",
        "_pace",
        "_paused_until",
        "_sleep",
        "_window",
        "allowed",
        "granted",
        "rate",
        "recover_after",
        "throttled_count",
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
        self._configured = math.inf if rate.unlimited else rate.per_second
        self._pace = self._configured  # starts a second at the moment
        self._next_step = math.inf  # when the pace may climb next
        self._last_adjust = -math.inf  # when a 429 last lowered the pace
        # When recent answers that were not 429s came: how many the server let through in a period.
        self._answered: deque[float] = deque(maxlen=max(4 * rate.count, 256))
        self.allowed: float | None = None  # starts a second the server allowed, learnt at the last 429
        self.recover_after = recover_after
        self.granted = 0
        self.throttled_count = 0

    @property
    def interval(self) -> float:
        """Seconds between two starts at the current (possibly reduced) pace."""
        if math.isinf(self._pace):
            return 0.0
        # Rounded up, so that ``count`` intervals never add up to less than one period.
        return math.nextafter(1.0 / self._pace, math.inf)

    @property
    def effective_per_second(self) -> float:
        return self._pace

    async def acquire(self) -> float:
        """Wait for a slot; return the time it was granted (by the pacer's clock)."""
        if math.isinf(self._pace) and self._paused_until == float("-inf"):
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

    def answered(self) -> None:
        """An answer that was not a 429 came: the server let that request through."""
        self._answered.append(self._clock())

    def throttled(self, seconds: float) -> None:
        """A 429: hold every worker for ``seconds`` (Retry-After, or the backoff) and learn the allowance.

        The 429s of one overload come in a burst (every request in flight); only the first in
        ``recover_after`` seconds lowers the pace, the others only extend the pause.
        """
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self.throttled_count += 1
        if now - self._last_adjust < self.recover_after:
            return  # the same overload as the last 429
        self._last_adjust = now
        period = 1.0 if self.rate.unlimited else self.rate.period
        answered = self._answered
        while answered and answered[0] <= now - period:
            answered.popleft()
        let_through = len(answered) / period
        pace = self._pace if not math.isinf(self._pace) else (let_through or 1.0)
        # Nothing let through in the last period (a 429 at once): all that is known is "slower". Few let
        # through is not proof of a low limit either: the start of a run, a stall of our own (a chunk
        # parsed, look-ups) leave few answers in the window, and one 429 by chance then would cut the
        # pace to a crawl that probes climb out of by 2% every 30 s. So one 429 at most halves it; a
        # real limit below that is reached by the next 429s.
        self.allowed = max(let_through, pace * self.MAX_CUT) if let_through > 0 else pace * self.BACKOFF
        target = self.allowed * self.SAFE
        self._pace = max(self.MIN_PER_SECOND, min(target, pace))
        # Below the target it climbs back in steps; at it, the next probe is a while away.
        self._next_step = now + seconds + (self.recover_after if self._pace < target * 0.999 else self.PROBE_EVERY)

    def _recover(self) -> None:
        if self._pace >= self._configured or self.allowed is None:
            return
        now = self._clock()
        while now >= self._next_step and self._pace < self._configured:
            target = self.allowed * self.SAFE
            if self._pace < target * 0.999:
                self._pace = min(target, self._pace + self.RECOVER_STEP * self.allowed, self._configured)
                self._next_step += self.recover_after
            else:
                self._pace = min(self._configured, self._pace * self.PROBE_STEP)
                self._next_step += self.PROBE_EVERY
