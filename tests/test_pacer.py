"""The pacer, driven by a fake clock: no window of one period ever starts more than the rate allows."""

from __future__ import annotations

import asyncio
import bisect

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
                pacer.pause(2.0)
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
    assert pacer.throttled == 1 and pacer.interval > 0.1
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
