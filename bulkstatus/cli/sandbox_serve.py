"""`bulkstatus sandbox`: serve the simulator until stopped, and say on the terminal what it serves.

What it prints, on stderr (stdout holds the URL alone, for scripts):
- at the start, the URL and the `export` lines that point bulkstatus at it;
- every `--report-every` seconds (5) in which something was served, one summary line: the calls of that
  interval by kind and outcome, their rate, and the requests held so far;
- a line for each call refused for its own content or credentials (a bad body, a wrong token, an unknown
  customer, a maker deciding their own request), at most `REFUSALS_SHOWN` per interval and
  `SAME_REFUSAL_SHOWN` of one error (the summary counts the rest); injected faults (429, 5xx, dropped
  connections) are counted in the summaries only;
- with `--verbose`, a line for every call instead;
- when stopped (Ctrl-C, SIGTERM), the totals.

A 10,000-row run at 100/s thus shows about 20 summary lines and its refusals, not 10,000 lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter

from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.cli.sandbox import (
    parse_port,
    parse_rate_limit,
    parse_seconds,
    parse_share,
    sandbox_config,
    sandbox_environment,
)
from bulkstatus.sim import SimConfig, Simulator
from bulkstatus.sim.monitor import Monitor, Served, Tally

REFUSALS_SHOWN = 10  # refusal lines per interval at most
SAME_REFUSAL_SHOWN = 3  # of which with the same kind, status, code and message
KINDS = ("create", "decide", "list", "get", "oauth", "other")
PREFIX = "sandbox"


def config_from(args: argparse.Namespace) -> SimConfig:
    """The simulator's settings from the command's options; ConfigError (one line) for a bad value."""
    config = sandbox_config()
    config.error_rate = parse_share(args.error_rate, "--error-rate") if args.error_rate is not None else 0.0
    limit = parse_rate_limit(args.rate_limit) if args.rate_limit is not None else None
    if limit is not None:
        config.rate_limit, config.rate_limit_period = float(limit[0]), limit[1]
    latency = parse_seconds(args.latency, "--latency") if args.latency is not None else 0.0
    config.latency = (0.0, latency)
    config.not_found |= {v.strip() for v in (args.not_found or "").split(",") if v.strip()}
    return config


def _clock_time() -> str:
    return time.strftime("%H:%M:%S")


def _n(number: float) -> str:
    return f"{number:,.0f}"


def _count(number: int, noun: str) -> str:
    return f"{_n(number)} {noun}{'' if number == 1 else 's'}"


def describe_tally(tally: Tally) -> str:
    """`create 510 (accepted 480, rate-limited 20, refused 10); list 2` from a tally, kinds in a fixed order."""
    parts = []
    for kind in KINDS:
        outcomes = {outcome: n for (k, outcome), n in tally.counts.items() if k == kind and n}
        if not outcomes:
            continue
        detail = ", ".join(f"{outcome} {_n(n)}" for outcome, n in sorted(outcomes.items(), key=lambda x: -x[1]))
        total = sum(outcomes.values())
        only_ok = set(outcomes) <= {"ok", "accepted"}
        parts.append(f"{kind} {_n(total)}" + ("" if only_ok and kind != "create" else f" ({detail})"))
    return "; ".join(parts) or "no calls"


def describe_held(states: dict[str, int]) -> str:
    held = sum(states.values())
    detail = ", ".join(f"{state} {_n(n)}" for state, n in sorted(states.items(), key=lambda x: -x[1]))
    return f"{_count(held, 'request')} held" + (f" ({detail})" if detail else "")


def summary_line(tally: Tally, states: dict[str, int], hidden: int) -> str:
    """The periodic line: `sandbox 12:00:05: last 5.0 s: 523 calls (104.6/s): ... | 1,100 requests held`."""
    rate = tally.calls / tally.seconds if tally.seconds > 0 else 0.0
    line = (f"{PREFIX} {_clock_time()}: last {tally.seconds:.1f} s: {_count(tally.calls, 'call')} ({rate:.1f}/s): "
            f"{describe_tally(tally)}")
    if hidden:
        line += f" [{_n(hidden)} more refusals not shown]"
    return line + f" | {describe_held(states)}"


def final_line(tally: Tally, states: dict[str, int]) -> str:
    return (f"{PREFIX}: stopped after {tally.seconds:.0f} s, {_count(tally.calls, 'call')} served: "
            f"{describe_tally(tally)} | {describe_held(states)}")


def call_line(served: Served) -> str:
    """One call: `sandbox 12:00:05: create mobile 9197... -> 400 refused: 8015 Customer not found ...`."""
    status = "no answer" if served.status is None else str(served.status)
    subject = f" {served.subject}" if served.subject else ""
    line = f"{PREFIX} {_clock_time()}: {served.kind}{subject} -> {status} {served.outcome}"
    if served.message:
        line += f": {served.code} {served.message}" if served.code is not None else f": {served.message}"
    return line + f" ({served.seconds * 1000:.0f} ms)"


class Terminal:
    """Prints what the monitor hears: refusals (a few per interval) or, verbose, every call."""

    def __init__(self, verbose: bool, quiet: bool) -> None:
        self.verbose, self.quiet = verbose, quiet
        self.shown = self.hidden = 0
        self._same: Counter[tuple[str, int | None, int | None, str | None]] = Counter()

    def hear(self, served: Served) -> None:
        if self.quiet:
            return
        if self.verbose:
            _say(call_line(served))
        elif served.outcome == "refused":
            same = (served.kind, served.status, served.code, served.message)
            if self.shown < REFUSALS_SHOWN and self._same[same] < SAME_REFUSAL_SHOWN:
                self.shown += 1
                self._same[same] += 1
                _say(call_line(served))
            else:
                self.hidden += 1

    def new_interval(self) -> int:
        """Start a new interval; the refusals not shown in the last one."""
        hidden, self.shown, self.hidden = self.hidden, 0, 0
        self._same.clear()
        return hidden


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _states(sim: Simulator) -> dict[str, int]:
    states: dict[str, int] = sim.state.stats()["states"]
    return states


async def _report(sim: Simulator, monitor: Monitor, terminal: Terminal, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        tally = monitor.take()
        hidden = terminal.new_interval()
        if tally.calls and not terminal.quiet:
            _say(summary_line(tally, _states(sim), hidden))


async def serve(config: SimConfig, host: str, port: int, every: float, terminal: Terminal) -> None:
    monitor = Monitor(time.monotonic, terminal.hear)
    sim = Simulator(config, monitor=monitor)
    url = await sim.start(host, port)
    main = asyncio.current_task()
    if main is not None:  # SIGTERM stops it as Ctrl-C does: with the totals
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    _say(f"bulkstatus sandbox: simulator listening on {url}  (Ctrl-C to stop)")
    _say("# to point a run at it, in another shell:")
    for name, value in sandbox_environment(url).items():
        _say(f"export {name}={value}")
    if every > 0 and not terminal.quiet:
        _say(f"# it prints a summary every {every:g} s while it serves, and a line for each refused call; "
             f"--verbose: a line per call; list what it received: curl '{url}/__sim/received?limit=20&PageNo=0'")
    print(url, flush=True)
    reporter = asyncio.create_task(_report(sim, monitor, terminal, every)) if every > 0 else None
    try:
        await asyncio.Event().wait()
    finally:
        if reporter is not None:
            reporter.cancel()
        _say(final_line(monitor.so_far(), _states(sim)))
        await sim.stop()


def sandbox(args: argparse.Namespace) -> int:
    config = config_from(args)
    port = parse_port(args.port) if args.port is not None else 0
    every = parse_seconds(args.report_every, "--report-every") if args.report_every is not None else 5.0
    terminal = Terminal(verbose=bool(args.verbose), quiet=bool(args.quiet))
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve(config, args.host, port, every, terminal))
    return ExitStatus.OK
