"""The pacer, driven by a fake clock: no window of one period ever starts more than the rate allows."""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections.abc import Coroutine
from typing import Any

from bulkstatus.api.pacer import Pacer
from bulkstatus.settings import parse_rate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def max_in_window(times: list[float], period: float) -> int:
    """The most starts in any half-open window [t, t + period), checked at every start."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + period) - i for i, t in enumerate(times))


async def _drive(rate: str, workers: int, per_worker: int, clock: FakeClock,
                 work: float = 0.0, pause_at: int | None = None) -> tuple[Pacer, list[float]]:
    pacer = Pacer(parse_rate(rate), clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def worker() -> None:
        for _ in range(per_worker):
            starts.append(await pacer.acquire())
            if pause_at is not None and len(starts) == pause_at:
                pacer.throttled(2.0)
            if work:
                await clock.sleep(work)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return pacer, starts


def test_twenty_per_second_never_exceeds_twenty_in_any_second():
    """--rate 20/s with 8 workers: at most 20 starts in any one-second window, and no slower than 20/s."""
    clock = FakeClock()
    _, starts = asyncio.run(_drive("20/s", 8, 25, clock))
    assert len(starts) == 200
    assert max_in_window(starts, 1.0) == 20
    # 200 starts at 20/s take about 10 s: each window of 20 is 1% longer than a second (the margin).
    assert 9.9 < max(starts) - min(starts) < 10.1


def test_per_minute_rate_is_spread_evenly():
    """600/min is one start every 0.1 s, not 600 at once."""
    clock = FakeClock()
    _, starts = asyncio.run(_drive("600/min", 4, 300, clock))
    assert max_in_window(starts, 60.0) == 600
    assert max_in_window(starts, 1.0) == 10


def test_slow_requests_do_not_let_a_burst_through():
    """With latency above the interval, the pace holds and no burst follows."""
    clock = FakeClock()
    _, starts = asyncio.run(_drive("50/s", 8, 50, clock, work=0.3))
    assert max_in_window(starts, 1.0) <= 50


def test_pause_holds_everyone_and_slows_the_pace():
    """A 429 pause stops every worker for its length, then the pace is lower and never bursts."""
    clock = FakeClock()
    pacer, starts = asyncio.run(_drive("10/s", 4, 20, clock, pause_at=10))
    starts.sort()
    assert starts[10] - starts[9] >= 2.0
    assert pacer.throttled_count == 1 and pacer.interval > 0.1
    assert max_in_window(starts, 1.0) <= 10


def test_every_window_of_count_starts_is_longer_than_the_period_by_the_margin():
    """Arrivals that jitter by a few ms still see at most the rate in any window: 50/s starts 51
    never closer than 1.01 s apart, 600/min starts 601 never closer than 60.25 s apart."""
    for rate, count, window in (("50/s", 50, 1.01), ("600/min", 600, 60.25)):
        clock = FakeClock()
        _, starts = asyncio.run(_drive(rate, 8, 2 * count // 8 + 1, clock))
        starts.sort()
        assert min(b - a for a, b in zip(starts, starts[count:], strict=False)) >= window
        assert max_in_window(starts, window - 1e-9) == count


def test_unlimited_rate_does_not_wait():
    clock = FakeClock()
    _, starts = asyncio.run(_drive("0", 4, 100, clock))
    assert set(starts) == {1000.0}


class SlidingWindowServer:
    """A server that admits at most ``limit`` requests in any 1 s and answers the rest 429 (Retry-After 1)."""

    def __init__(self, limit: int, clock: FakeClock) -> None:
        self.limit = limit
        self.clock = clock
        self.admitted: list[float] = []
        self.refused = 0

    def answer(self, pacer: Pacer) -> bool:
        now = self.clock()
        recent = [t for t in self.admitted[-self.limit:] if now - t < 1.0]
        if len(recent) >= self.limit:
            self.refused += 1
            pacer.throttled(1.0)
            return False
        self.admitted.append(now)
        pacer.answered()
        return True


class VirtualTime(FakeClock):
    """Time that passes only when every task waits: each sleep is a timer, and the driver jumps to the
    next one once the runnable tasks have run. Concurrent sleeps overlap, as on a real clock."""

    def __init__(self) -> None:
        super().__init__()
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._timers, (self.now + max(seconds, 0.0), self._seq, future))
        await future

    async def drive(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(20):  # let every task that can run reach its next wait
                await asyncio.sleep(0)
            if self._timers and not task.done():
                when, _, future = heapq.heappop(self._timers)
                self.now = max(self.now, when)
                future.set_result(None)
        await task


async def _against(server: SlidingWindowServer, rate: str, rows: int, workers: int, latency: float) -> Pacer:
    clock = server.clock
    assert isinstance(clock, VirtualTime)
    pacer = Pacer(parse_rate(rate), clock=clock, sleep=clock.sleep)
    todo = iter(range(rows))

    async def worker() -> None:
        for _ in todo:
            while True:
                await pacer.acquire()
                await clock.sleep(latency)
                if server.answer(pacer):
                    break

    async def all_workers() -> None:
        await asyncio.gather(*(worker() for _ in range(workers)))

    await clock.drive(all_workers())
    return pacer


def test_asking_for_more_than_the_server_allows_uses_its_quota():
    """--rate 20/s against a 15/s sliding window: at least 90% of 15/s, at most 5% of requests answered 429,
    and the learnt allowance is what the server allows."""
    for latency in (0.005, 0.05, 0.2):
        clock = VirtualTime()
        server = SlidingWindowServer(15, clock)
        pacer = asyncio.run(_against(server, "20/s", 600, 8, latency))
        span = server.admitted[-1] - server.admitted[0]
        achieved = (len(server.admitted) - 1) / span
        assert achieved >= 0.9 * 15, (latency, achieved)
        assert server.refused <= 0.05 * (600 + server.refused), (latency, server.refused)
        assert pacer.allowed is not None and 14 <= pacer.allowed <= 16, pacer.allowed


def test_a_long_run_against_a_limit_keeps_using_the_quota():
    """Over 5,000 requests (about six minutes) the pace stays within a few percent of the limit:
    probes above it cost a 429 now and then, not every few seconds."""
    clock = VirtualTime()
    server = SlidingWindowServer(15, clock)
    asyncio.run(_against(server, "20/s", 5000, 8, 0.05))
    span = server.admitted[-1] - server.admitted[0]
    assert (len(server.admitted) - 1) / span >= 0.92 * 15
    assert server.refused <= 0.01 * 5000


def test_a_limit_counted_per_minute_is_found_from_a_per_second_rate():
    """--rate 3/s against 100 requests a minute: the pace comes down to the per-minute limit in a few 429s."""
    clock = FakeClock()
    admitted: list[float] = []
    refused = 0
    pacer = Pacer(parse_rate("3/s"), clock=clock, sleep=clock.sleep)

    async def run() -> None:
        nonlocal refused
        while len(admitted) < 400:
            await pacer.acquire()
            now = clock()
            if len([t for t in admitted[-100:] if now - t < 60.0]) >= 100:
                refused += 1
                pacer.throttled(5.0)
            else:
                admitted.append(now)
                pacer.answered()

    asyncio.run(run())
    assert refused <= 40
    assert pacer.effective_per_second <= 100 / 60 * 1.05


def test_unlimited_rate_learns_a_pace_from_the_first_429():
    """--rate 0 against a 15/s server: after the first 429 it paces at what the server let through."""
    clock = VirtualTime()
    server = SlidingWindowServer(15, clock)
    pacer = asyncio.run(_against(server, "0", 600, 8, 0.01))
    assert 13 <= pacer.effective_per_second <= 15.5
    assert server.refused <= 30


def test_one_429_with_few_answers_in_the_window_does_not_crush_the_pace():
    """A 429 by chance just after a stall of our own (2 answers in the last second at 700/s): the pace
    is at most halved, not set to 2/s (which probes would take hours to climb out of)."""
    clock = FakeClock()
    pacer = Pacer(parse_rate("700/s"), clock=clock)
    pacer.answered()
    pacer.answered()
    clock.now += 0.5
    pacer.throttled(0.0)
    assert pacer.effective_per_second >= 700 * 0.5 * 0.97
    # A real limit is still found: against 15/s, each later 429 comes down towards what was let through.
    for _ in range(8):
        clock.now += 1.5
        for _ in range(15):
            pacer.answered()
        pacer.throttled(0.0)
    assert 14 <= (pacer.allowed or 0) <= 16
