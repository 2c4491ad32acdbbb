"""API calls that following a 10,000-row run costs, measured through the CLI against the simulator.

    python benchmarks/track_calls.py [--rows 10000] [--noise 20000]

Runs `bulkstatus run` on ROWS rows, then `track` (nothing decided yet), a checker `approve` of every
request, and `track` again; then the same with NOISE requests of another maker made that day, which the
list pages must skip over. Prints the calls each step made, as the simulator counted them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from simhelpers import SimulatorThread  # noqa: E402

from bulkstatus.cli import main  # noqa: E402
from bulkstatus.cli.sandbox import sandbox_config, sandbox_environment  # noqa: E402
from bulkstatus.sim import config as simcfg  # noqa: E402
from bulkstatus.sim.state import PENDING, REQUEST_TYPE_VALUE, StoredRequest  # noqa: E402


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(args))
    return code, out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""


def calls(sim: SimulatorThread, before: dict[str, int]) -> str:
    now = sim.sim.state.stats()
    parts = {k: now[k] - before.get(k, 0) for k in ("list_calls", "get_calls", "approve_calls", "create_calls")}
    return ", ".join(f"{k.removesuffix('_calls')} {v}" for k, v in parts.items() if v)


def noise(sim: SimulatorThread, count: int) -> None:
    """Requests of another maker, made the same day, that the list pages must page over."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for i in range(count):
        sim.sim.state.add(StoredRequest(
            f"other-{i}", 4242, "other", REQUEST_TYPE_VALUE, PENDING, now, None, {},
            {"queryParams": {"identifierName": "email", "identifierValue": f"o{i}@example.com"},
             "body": {"label": "Active"}}, "email", f"o{i}@example.com", "Active", "other"))


def scenario(rows: int, extra: int, work: Path) -> None:
    with SimulatorThread(sandbox_config()) as sim:
        os.environ.update(sandbox_environment(sim.url))
        os.environ.update({"BULKSTATUS_RATE": "0", "BULKSTATUS_BACKOFF": "0", "BULKSTATUS_CONCURRENCY": "16",
                           "BULKSTATUS_OUT": str(work / "out")})
        noise(sim, extra)
        path = work / f"rows-{rows}-{extra}.csv"
        path.write_text("identifierName,identifierValue,label,reason\n"
                        + "".join(f"mobile,91{i:010d},Suspended,bench\n" for i in range(rows)))
        print(f"\n{rows} rows, {extra} other requests of the day:")
        before = sim.sim.state.stats()
        started = time.monotonic()
        code, folder = cli("run", str(path))
        print(f"  run      exit {code}: {calls(sim, before)} ({time.monotonic() - started:.1f} s)")
        for step, args in (
            ("track", ("track", folder)),
            ("approve", ("approve", folder, "--decision", "approved", "--message", "bench", "--yes")),
            ("track", ("track", folder)),
        ):
            before = sim.sim.state.stats()
            if step == "approve":
                os.environ["BULKSTATUS_UI_TOKEN"] = simcfg.SANDBOX_CHECKER_TOKEN
            code, _ = cli(*args)
            os.environ["BULKSTATUS_UI_TOKEN"] = simcfg.SANDBOX_MAKER_TOKEN
            print(f"  {step:8} exit {code}: {calls(sim, before)}")
        tracking = json.loads((Path(folder) / "summary.json").read_text())["tracking"]
        print(f"  summary.json tracking: apiCalls {tracking['apiCalls']}, counts {tracking['counts']}")


def cli_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--noise", type=int, default=20_000)
    return parser.parse_args()


if __name__ == "__main__":
    options = cli_args()
    for name in [n for n in os.environ if n.startswith("BULKSTATUS_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory() as tmp:
        scenario(options.rows, 0, Path(tmp))
        scenario(options.rows, options.noise, Path(tmp))
