"""Shared by the benchmark scripts: input files, the environment that points bulkstatus at a local
server, running the CLI as a child process, and a few statistics. Everything talks to 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"  # git-ignored
HEADER = "identifierName,identifierValue,label,reason\n"

# A fixed 200 answer of the documented create shape (what nginx serves and our own servers copy).
CREATED = (
    '{"data":{"requestId":"5f0c6a3e-2d1b-4c8e-9a57-0b7e3c1d2f40","userId":75155372,'
    '"userName":"till.01","requestType":"customer-status-change","state":"AdminTask",'
    '"startTime":"2026-11-29T09:30:00","endTime":null,"details":{}}}'
)
# An empty page of the list endpoint, for the run's pending check (nothing pending).
EMPTY_LIST = '{"data":[],"pagination":{"totalElements":0,"totalPages":0,"numberOfElements":0,"number":0}}'
LIST_PATH = "/api_gateway/v2/request-workflow/requests"
CREATE_PATH = "/api_gateway/v2/request-workflow/CUSTOMER-STATUS-CHANGE"


def data_file(rows: int, *, seed: int = 7, quoted: bool = False) -> Path:
    """``benchmarks/data/rows-{rows}.csv``: all valid, no duplicates, made once and kept.

    ``quoted``: ``rows-{rows}-quoted.csv``, the same rows with reasons as Excel saves them when they hold
    commas and quotes (a value with a comma, one with doubled quotes), two rows in three."""
    path = DATA / (f"rows-{rows}-quoted.csv" if quoted else f"rows-{rows}.csv")
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    labels = ("Suspended", "Active", "Fraud Suspected")
    reasons = ("fraud review 2026-11", "customer request", "reactivated after incident #4411")
    if quoted:
        reasons = ("fraud review 2026-11", '"customer request, by phone"', '"reactivated: ""incident 4411"""')
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        lines = []
        for i in range(1, rows + 1):
            kind = i % 3
            if kind == 0:
                name, value = "mobile", f"91{7000000000 + i}"
            elif kind == 1:
                name, value = "email", f"customer.{i}@example.com"
            else:
                name, value = "externalId", f"EXT-{i:09d}"
            lines.append(f"{name},{value},{rng.choice(labels)},{rng.choice(reasons)}\n")
            if len(lines) >= 50_000:
                fh.writelines(lines)
                lines.clear()
        fh.writelines(lines)
    tmp.replace(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def tool_environment(url: str, **extra: str) -> dict[str, str]:
    """The process environment for a ``bulkstatus run`` against ``url`` with the sandbox's made-up
    credentials (the servers used here accept anything)."""
    from bulkstatus.cli.sandbox import sandbox_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKSTATUS_")}
    env.update(sandbox_environment(url))
    env.update(extra)
    return env


def tool_command(input_path: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bulkstatus", "run", str(input_path), "--out", str(out), "--quiet",
            "--new-run", *args]


@dataclass
class ToolRun:
    code: int
    seconds: float  # wall time of the whole process
    folder: Path | None
    stderr: str


def run_tool(input_path: Path, url: str, out: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 900.0) -> ToolRun:
    """Run ``bulkstatus run`` in a child process, its run folder under ``out``; wait for it."""
    started = time.perf_counter()
    proc = subprocess.run(tool_command(input_path, out, *args), env=env or tool_environment(url),
                          capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    lines = proc.stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines else None
    return ToolRun(proc.returncode, seconds, folder, proc.stderr)


@contextmanager
def scratch() -> Iterator[Path]:
    """A temporary folder removed afterwards (run folders of a million rows are large)."""
    path = Path(tempfile.mkdtemp(prefix="bulkstatus-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt(values: Sequence[float], digits: int = 0) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)



class ArrivalServer:
    """A tiny aiohttp server in a background thread: answers CREATED to anything and records the
    arrival time (``time.monotonic()``) of every request."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.first = threading.Event()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="arrivals", daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == LIST_PATH:
            return web.Response(body=EMPTY_LIST.encode(), content_type="application/json")
        self.arrivals.append(time.monotonic())
        self.first.set()
        await request.read()
        return web.Response(body=CREATED.encode(), content_type="application/json")

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> ArrivalServer:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    @property
    def first_arrival(self) -> float | None:
        return self.arrivals[0] if self.arrivals else None
