"""Peak memory of the whole ``bulkstatus run`` process, for 100,000 and 1,000,000 rows.

Each run is a child process; its peak resident set size comes from the kernel when it exits
(``os.wait4`` -> ``ru_maxrss``), and ``/proc/PID/status`` is sampled meanwhile to show whether memory
stays flat over the run. Modes: ``dry`` (``--dry-run``: read, check, build and journal every body, send
nothing) and ``real`` (``--rate 0 --concurrency 8`` against nginx on 127.0.0.1, see nginx.py).

Targets (issue 5): at most 150 MB for 1,000,000 rows, and within 20% of the 100,000-row peak.

    python benchmarks/memory.py                              # both sizes, both modes (about 8 minutes)
    python benchmarks/memory.py --modes dry --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from common import data_file, scratch, tool_command, tool_environment
from nginx import nginx

LIMIT_MB = 150.0
GROWTH = 1.20


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


Samples = list[tuple[float, float]]


def measure(input_path: Path, url: str, out: Path, *args: str) -> tuple[float, Samples, float, int]:
    """(peak MB, [(seconds, RSS MB)], wall seconds, exit status) of one ``bulkstatus run``."""
    cmd = tool_command(input_path, out, *args)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=tool_environment(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: Samples = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            value = rss_mb(proc.pid)
            if value is not None:
                samples.append((time.monotonic() - started, value))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    err = proc.stderr.read()  # drains stderr until the child closes it (at exit)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        detail = err.decode(errors="replace")[-3000:]
        raise SystemExit(f"bulkstatus run failed (exit {proc.returncode}):\n{detail}")
    return usage.ru_maxrss / 1024, samples, time.monotonic() - started, proc.returncode


def profile_line(samples: Samples) -> str:
    """RSS at 10%, 25%, 50%, 75% and 100% of the run: flat means streaming works."""
    if not samples:
        return "(no samples)"
    picks = [samples[min(len(samples) - 1, int(len(samples) * f))] for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
    return ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--modes", nargs="+", choices=("dry", "real"), default=["dry", "real"])
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    print(f"memory: python {sys.version.split()[0]}",
          flush=True)
    peaks: dict[tuple[str, int], float] = {}
    with ExitStack() as stack:
        url = stack.enter_context(nginx()) if "real" in args.modes else ""
        for mode in args.modes:
            for size in sorted(args.sizes):
                path = data_file(size)
                extra = ("--dry-run",) if mode == "dry" else ("--concurrency", str(args.workers))
                with scratch() as out:
                    peak, samples, wall, code = measure(path, url or "http://127.0.0.1:9", out, "--rate", "0",
                                                        *extra)
                peaks[(mode, size)] = peak
                verdict = "ok" if peak <= LIMIT_MB else "OVER 150 MB"
                print(f"  {mode:4} {size:>9,} rows: peak RSS {peak:6.1f} MB ({verdict}); {wall:.0f} s, "
                      f"{size / wall:.0f} rows/s, exit {code}; RSS MB over the run: {profile_line(samples)}",
                      flush=True)
    for mode in args.modes:
        small, large = min(args.sizes), max(args.sizes)
        if small != large and (mode, small) in peaks:
            ratio = peaks[(mode, large)] / peaks[(mode, small)]
            verdict = "ok" if ratio <= GROWTH else "OVER"
            print(f"  {mode}: peak at {large:,} rows is {ratio:.2f}x the peak at {small:,} rows "
                  f"(target <= {GROWTH:.2f}, {verdict})", flush=True)


if __name__ == "__main__":
    main()
