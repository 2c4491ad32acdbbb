"""Pacing: does ``bulkstatus run --rate R`` start requests evenly, never more than R in any window?

A small aiohttp server on 127.0.0.1 (in this process) records the arrival time of every create request and
answers 200, or, depending on the scenario, slowly, with transient 503s (so retries are mixed in), or
with 429 + Retry-After for a moment (a throttling pause). ``bulkstatus run`` runs as a child process
against it; after the measured span it gets SIGINT (which also checks that Ctrl-C works on the event loop
in use) and exits by itself within the grace period.

For each scenario it prints: requests seen in the first ``seconds`` after the first arrival, the achieved
rate as a share of the configured one, the busiest sliding window of one period (1 s for N/s, 60 s for
N/min) against the limit, and the smallest gap between two arrivals.

    python benchmarks/pacing.py                 # every scenario (about 5 minutes)
    python benchmarks/pacing.py 50s 50s-slow    # some of them; --list shows the names
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field

from aiohttp import web
from common import (
    CREATE_PATH,
    CREATED,
    EMPTY_LIST,
    LIST_PATH,
    data_file,
    scratch,
    tool_command,
    tool_environment,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    rate: str  # as given to --rate
    count: int
    period: float
    seconds: float  # measured span, from the first arrival
    concurrency: int = 8
    latency: float = 0.0  # seconds the server takes to answer
    error_rate: float = 0.0  # share of answers that are 503 (retried by the tool)
    throttle_at: float | None = None  # seconds after the first arrival: answer 429 for throttle_for s
    throttle_for: float = 0.1
    retry_after: str = "1"
    note: str = ""


SCENARIOS = [
    Scenario("50s", "50/s", 50, 1.0, 20.0),
    Scenario("50s-slow", "50/s", 50, 1.0, 20.0, concurrency=16, latency=0.25,
             note="latency 250 ms, 12x the 20 ms interval"),
    Scenario("50s-retries", "50/s", 50, 1.0, 20.0, error_rate=0.1, note="10% of answers are 503"),
    Scenario("50s-429", "50/s", 50, 1.0, 20.0, throttle_at=8.0,
             note="429 + Retry-After: 1 for 100 ms at t=8 s; the tool then slows down on purpose"),
    Scenario("600min", "600/min", 600, 60.0, 75.0),
    Scenario("600min-slow-retries", "600/min", 600, 60.0, 75.0, latency=0.3, error_rate=0.1,
             note="latency 300 ms (3x the interval) and 10% 503s"),
]


@dataclass
class Recorder:
    scenario: Scenario
    arrivals: list[float] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    async def listing(self, request: web.Request) -> web.Response:
        return web.Response(body=EMPTY_LIST.encode(), content_type="application/json")

    async def create(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.arrivals.append(now)
        await request.read()
        sc = self.scenario
        if sc.latency:
            await asyncio.sleep(sc.latency)
        first = self.arrivals[0]
        throttling = sc.throttle_at is not None and 0 <= now - first - sc.throttle_at < sc.throttle_for
        if throttling:
            return web.json_response({"errors": [{"code": 429, "message": "throttled"}]}, status=429,
                                     headers={"Retry-After": sc.retry_after})
        if sc.error_rate and self.rng.random() < sc.error_rate:
            return web.json_response({"errors": [{"code": 4001, "message": "Authorization status unavailable"}]},
                                     status=503)  # the API's retryable 503; a bare one would be looked up first
        return web.Response(body=CREATED.encode(), content_type="application/json")


def busiest_window(times: list[float], period: float) -> tuple[int, float]:
    """Most arrivals in any half-open window [t, t + period), and where it starts."""
    best, at = 0, 0.0
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + period, lo=i) - i
        if n > best:
            best, at = n, t
    return best, at


async def run_scenario(sc: Scenario) -> dict[str, float]:
    recorder = Recorder(sc)
    app = web.Application()
    app.router.add_post(CREATE_PATH, recorder.create)
    app.router.add_get(LIST_PATH, recorder.listing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    rows = int(sc.count / sc.period * (sc.seconds + 10))
    extra = {"BULKSTATUS_GRACE": "5"}
    with scratch() as out:
        cmd = tool_command(data_file(rows), out, "--rate", sc.rate, "--concurrency", str(sc.concurrency))
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*cmd, env=tool_environment(url, **extra),
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            deadline = started + 30
            while not recorder.arrivals and time.monotonic() < deadline and proc.returncode is None:
                await asyncio.sleep(0.01)
            if not recorder.arrivals:
                raise RuntimeError("no request arrived; is bulkstatus working?")
            end = recorder.arrivals[0] + sc.seconds + 1.0
            while time.monotonic() < end and proc.returncode is None:
                await asyncio.sleep(0.05)
            interrupted_at = time.monotonic()
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            exit_seconds = time.monotonic() - interrupted_at
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await runner.cleanup()
    times = recorder.arrivals
    first = times[0]
    measured = [t for t in times if t < first + sc.seconds]
    window, window_at = busiest_window(times, sc.period)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    per_second = sc.count / sc.period
    tail = [t for t in measured if t >= first + sc.seconds - 5.0]
    result = {
        "tail_share": len(tail) / 5.0 / (sc.count / sc.period),
        "requests": len(measured),
        "achieved": len(measured) / sc.seconds,
        "share": len(measured) / sc.seconds / per_second,
        "window": window,
        "window_at": window_at - first,
        "min_gap": min(gaps),
        "max_gap": max(gaps[: len(measured)]),
        "exit_code": proc.returncode or 0,
        "exit_seconds": exit_seconds,
        "start_seconds": first - started,
    }
    if proc.returncode not in (0, 1, 130):
        print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    return result


def report(sc: Scenario, r: dict[str, float]) -> None:
    per_second = sc.count / sc.period
    limit_ok = "ok" if r["window"] <= sc.count else "OVER"
    rate_ok = "ok" if r["share"] >= 0.98 else "LOW"
    unit = "s" if sc.period == 1 else "min"
    print(f"{sc.name:22} --rate {sc.rate:8} {r['requests']:5.0f} requests in {sc.seconds:.0f} s = "
          f"{r['achieved']:.2f}/s ({r['share'] * 100:.1f}% of {per_second:g}/s, {rate_ok}; last 5 s "
          f"{r['tail_share'] * 100:.0f}%); busiest 1-{unit} "
          f"window {r['window']:.0f} (limit {sc.count}, {limit_ok}) at t={r['window_at']:.1f} s; "
          f"gaps {r['min_gap'] * 1000:.1f}..{r['max_gap'] * 1000:.0f} ms; exit {r['exit_code']:.0f} "
          f"{r['exit_seconds']:.1f} s after SIGINT; first request {r['start_seconds']:.2f} s after start",
          flush=True)
    if sc.note:
        print(f"{'':22} ({sc.note})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios")
    args = parser.parse_args()
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:22} --rate {sc.rate:8} {sc.seconds:.0f} s  {sc.note}")
        return
    chosen = [sc for sc in SCENARIOS if not args.names or sc.name in args.names]
    unknown = set(args.names) - {sc.name for sc in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; --list shows them")
    print(f"pacing: {len(chosen)} scenario(s); python {sys.version.split()[0]}; {os.cpu_count()} cores",
          flush=True)
    for sc in chosen:
        report(sc, asyncio.run(run_scenario(sc)))


if __name__ == "__main__":
    main()
