"""Throughput and start-up: bulkstatus against a plain aiohttp script, and time to the first request.

Parts (all by default, or name them):

- ``overhead``: nginx on 127.0.0.1 answers a fixed 200; ``--runs`` times (alternating, so drift in the
  machine hits both alike) the plain script (benchmarks/plain_client.py) and ``bulkstatus run --rate 0``
  each send the same ``--rows`` file with the same ``--workers``. Rows/s is measured on the whole process
  (command start to exit, what a user waits for) and in-process (the plain script's own timer; the
  tool's summary.json duration). The figure is the median ratio tool/plain.
- ``dry``: ``bulkstatus run --dry-run`` on 100,000 rows: the per-row cost with no network at all.
- ``start``: a 1,000,000-row file at ``--rate 0`` against a timestamping server: seconds from the command
  starting to the first request arriving; then SIGINT. Also the parts of it: interpreter + imports,
  SHA-256 of the file, the line count.
- ``profile``: ``bulkstatus run --rate 0`` on ``--rows`` rows against nginx under pyinstrument; the
  text report goes to benchmarks/results/profile.txt (git-ignored) and its top is printed.

    python benchmarks/throughput.py                       # everything (about 5 minutes)
    python benchmarks/throughput.py overhead --runs 5 --rows 20000 --workers 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (
    HERE,
    ArrivalServer,
    data_file,
    fmt,
    median,
    run_tool,
    scratch,
    tool_command,
    tool_environment,
)
from nginx import nginx
from pyinstrument.frame import Frame

from bulkstatus.input.reader import check_structure

PARTS = ("overhead", "dry", "start", "profile")


def plain_run(input_path: Path, url: str, workers: int, out: Path) -> tuple[float, float]:
    """(rows/s over the whole process, rows/s by the script's own timer)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / "plain_client.py"), str(input_path),
                           str(out / "plain.csv"), "--url", url, "--workers", str(workers)],
                          capture_output=True, text=True, check=True, timeout=900)
    wall = time.perf_counter() - started
    rows, _, rest = proc.stdout.partition(" rows in ")
    inner = float(rest.split(" s")[0])
    return int(rows) / wall, int(rows) / inner


def tool_run(input_path: Path, url: str, workers: int, out: Path, *extra: str) -> tuple[float, float, dict]:
    run = run_tool(input_path, url, out, "--rate", "0", "--concurrency", str(workers), *extra)
    if run.folder is None or run.code not in (0,):
        raise SystemExit(f"bulkstatus run failed (exit {run.code}):\n{run.stderr[-3000:]}")
    summary = json.loads((run.folder / "summary.json").read_text())
    rows = summary["rows"]
    return rows / run.seconds, rows / summary["durationSeconds"], summary


def overhead(args: argparse.Namespace) -> None:
    path = data_file(args.rows)
    plain_wall, plain_inner, tool_wall, tool_inner = [], [], [], []
    with nginx() as url:
        # One short warm-up each, so that the page cache and nginx are warm for run 1 too.
        with scratch() as out:
            plain_run(data_file(2000), url, args.workers, out)
            tool_run(data_file(2000), url, args.workers, out)
        for i in range(args.runs):
            with scratch() as out:
                order = ("plain", "tool") if i % 2 == 0 else ("tool", "plain")
                for who in order:
                    if who == "plain":
                        wall, inner = plain_run(path, url, args.workers, out)
                        plain_wall.append(wall)
                        plain_inner.append(inner)
                    else:
                        wall, inner, summary = tool_run(path, url, args.workers, out)
                        assert summary["counts"]["submitted"] == args.rows, summary["counts"]
                        tool_wall.append(wall)
                        tool_inner.append(inner)
            print(f"  run {i + 1}: plain {plain_wall[-1]:.0f} rows/s, bulkstatus {tool_wall[-1]:.0f} rows/s "
                  f"(whole process)", flush=True)
    ratios = [t / p for t, p in zip(tool_wall, plain_wall, strict=True)]
    ratios_inner = [t / p for t, p in zip(tool_inner, plain_inner, strict=True)]
    print(f"overhead: {args.runs} x {args.rows} rows, {args.workers} workers, nginx on 127.0.0.1, "
          "")
    print(f"  plain script   rows/s whole process: {fmt(plain_wall)}  median {median(plain_wall):.0f}")
    print(f"  bulkstatus     rows/s whole process: {fmt(tool_wall)}  median {median(tool_wall):.0f}")
    print(f"  plain script   rows/s in-process:    {fmt(plain_inner)}  median {median(plain_inner):.0f}")
    print(f"  bulkstatus     rows/s in-process:    {fmt(tool_inner)}  median {median(tool_inner):.0f}")
    print(f"  RATIO tool/plain (whole process): median {median(ratios):.2f}  (runs: {fmt(ratios, 2)})")
    print(f"  ratio tool/plain (in-process):    median {median(ratios_inner):.2f}  "
          f"(runs: {fmt(ratios_inner, 2)})", flush=True)


def dry(args: argparse.Namespace) -> None:
    path = data_file(100_000)
    walls, inners = [], []
    for _ in range(3):
        with scratch() as out:
            run = run_tool(path, "http://127.0.0.1:9", out, "--dry-run", "--rate", "0")
            if run.folder is None:
                raise SystemExit(f"dry run failed (exit {run.code}):\n{run.stderr[-3000:]}")
            summary = json.loads((run.folder / "summary.json").read_text())
            walls.append(summary["rows"] / run.seconds)
            inners.append(summary["rows"] / summary["durationSeconds"])
    print(f"dry run: 3 x 100000 rows: rows/s whole process {fmt(walls)} (median {median(walls):.0f}); "
          f"in-process {fmt(inners)} (median {median(inners):.0f})", flush=True)


def start(args: argparse.Namespace) -> None:
    # As after `pip install` or any earlier run: bulkstatus's modules compiled. (This machine sets
    # PYTHONDONTWRITEBYTECODE=1, so without this every start would compile them, about 0.07 s.)
    import bulkstatus

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(bulkstatus.__file__).parent)],
                   check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    _start(args, data_file(1_000_000), "1,000,000 rows")
    _start(args, data_file(1_000_000, quoted=True), "1,000,000 rows, two in three with quoted reasons")


def _start(args: argparse.Namespace, path: Path, what: str) -> None:
    firsts: list[float] = []
    exits: list[float] = []
    for _ in range(3):
        with ArrivalServer() as server, scratch() as out:
            cmd = tool_command(path, out, "--rate", "0", "--concurrency", str(args.workers))
            started = time.monotonic()
            proc = subprocess.Popen(cmd, env=tool_environment(server.url, BULKSTATUS_GRACE="2"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if not server.first.wait(timeout=60):
                    raise SystemExit("no request arrived within 60 s")
                assert server.first_arrival is not None
                firsts.append(server.first_arrival - started)
                interrupted = time.monotonic()
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=300)
                exits.append(time.monotonic() - interrupted)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    # The parts: a bare interpreter, the imports, hashing and counting the file.
    bare = _seconds([sys.executable, "-c", "pass"])
    imports = _seconds([sys.executable, "-c", "import bulkstatus.cli.commands, bulkstatus.run.runner"])
    t = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    sha = time.perf_counter() - t
    t = time.perf_counter()
    with path.open("rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    count = time.perf_counter() - t
    t = time.perf_counter()
    check_structure(path)
    structure = time.perf_counter() - t
    prepass = _prepass_seconds(path)
    size = path.stat().st_size / 1e6
    print(f"start: {what} ({size:.0f} MB): command start -> first request at the server: "
          f"{fmt(firsts, 2)} s (median {median(firsts):.2f} s)")
    print(f"  of which: bare python {bare:.2f} s, python + bulkstatus imports {imports:.2f} s, "
          f"SHA-256 of the file {sha:.3f} s, counting its {lines} lines {count:.3f} s, its structure check "
          f"{structure:.3f} s (page cache warm; the run does all three on two threads); the pre-pass for "
          f"customers given two labels {prepass:.2f} s")
    print(f"  after SIGINT right after the first request, exit in {fmt(exits, 1)} s (the rest of the file is "
          "read and recorded as unprocessed)", flush=True)


def _prepass_seconds(path: Path) -> float:
    """The run's pass over the whole file before the first request: customers given different labels."""
    from bulkstatus.input.reader import InputReader, collector_paused
    from bulkstatus.input.repeats import find_repeats

    t = time.perf_counter()
    with InputReader(path) as reader, collector_paused():
        find_repeats(reader.rest_columns())
    return time.perf_counter() - t


def _seconds(cmd: list[str]) -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t)
    return min(times)


def profile(args: argparse.Namespace) -> None:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    session_file, report = results / "profile.pyisession", results / "profile.txt"
    path = data_file(args.rows)
    with nginx() as url, scratch() as out:
        run = tool_command(path, out, "--rate", "0", "--concurrency", str(args.workers))[3:]
        profiler = [sys.executable, "-m", "pyinstrument", "-r", "session", "-o", str(session_file)]
        cmd = [*profiler, "-m", "bulkstatus", *run]
        proc = subprocess.run(cmd, env=tool_environment(url), capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"profiled run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(str(session_file))
    report.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session))
    root = session.root_frame()
    assert root is not None
    buckets: dict[str, float] = {}

    def walk(frame: Frame, bucket: str) -> None:
        bucket = _bucket(frame, bucket)
        own = frame.time - sum(child.time for child in frame.children)
        buckets[bucket] = buckets.get(bucket, 0.0) + own
        for child in frame.children:
            walk(child, bucket)

    walk(root, "other")
    total = sum(buckets.values())
    print(f"profile of bulkstatus run --rate 0, {args.rows} rows, {args.workers} workers (main thread, "
          f"{session.duration:.1f} s under the profiler, CPU {session.cpu_time:.1f} s)")
    print(f"  full tree in {report}")
    print("  self time by where it is spent (built-in calls count towards their caller):")
    for name, seconds in sorted(buckets.items(), key=lambda kv: -kv[1]):
        if seconds / total >= 0.005:
            print(f"    {seconds / total * 100:5.1f}%  {name}")
    sys.stdout.flush()


_LIBRARIES = (
    ("aiohttp", "aiohttp"), ("yarl", "aiohttp (yarl, multidict)"), ("multidict", "aiohttp (yarl, multidict)"),
    ("asyncio", "event loop (asyncio)"), ("uvloop", "event loop (uvloop)"), ("pandas", "pandas/numpy"),
    ("numpy", "pandas/numpy"), ("tqdm", "tqdm"), ("csv", "csv"), ("logging", "logging"),
)


def _bucket(frame: Frame, inherited: str) -> str:
    """Which part of the program a frame belongs to; built-ins inherit their caller's."""
    path = frame.file_path or ""
    if frame.is_synthetic or path.startswith("<built-in>") or not path:
        if frame.function in ("[await]", "[self]") or frame.is_synthetic:
            return "waiting for the network / idle (await)" if frame.function == "[await]" else inherited
        return inherited
    if "/bulkstatus/" in path:
        return "bulkstatus." + path.rsplit("/bulkstatus/", 1)[1].removesuffix(".py").replace("/", ".")
    for marker, name in _LIBRARIES:
        if f"/{marker}/" in path or path.endswith(f"/{marker}.py"):
            return name
    if "/importlib/" in path or "<frozen" in path:
        return "imports"
    return "other (stdlib)" if "/lib/python3" in path and "site-packages" not in path else "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    print(f"throughput: python {sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    for part in args.parts or PARTS:
        globals()[part](args)


if __name__ == "__main__":
    main()
