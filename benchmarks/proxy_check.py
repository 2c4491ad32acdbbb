"""Manual check: does `bulkstatus run` honour HTTP_PROXY / NO_PROXY? Counted at a real proxy, tinyproxy.

For each case a fresh simulator (`bulkstatus sandbox --port 0`) and one `bulkstatus run samples/customers.csv`
against it with the sandbox's settings plus the case's proxy variables; tinyproxy runs throughout on a free
127.0.0.1 port. Per case the table shows what the simulator received (its /__sim/stats, read directly) and
what went through tinyproxy (the "Request ..." lines of its log, by path), and the CLI's exit status.

    apt-get install -y tinyproxy                     # once; needs no root to run
    .venv/bin/python benchmarks/proxy_check.py       # ~10 s; --keep keeps the temp dir (logs, run folders)

Everything talks to 127.0.0.1 only. Proxy variables of the calling shell are not passed on; PYTHONPATH is
(to check a snapshot of the tree, see README.md here). tinyproxy needs no User/Group lines: it runs as the
calling user (as root it warns "You SHOULD set a UserName" and works); with no ConnectPort line CONNECT is
allowed to any port, and it forwards to loopback targets without further configuration.

tinyproxy 1.11 answers one request per client connection and then closes it without a `Connection: close`
header (tinyproxy/tinyproxy#563, #511). A client that keeps connections alive then writes its next request
into a closed connection: a lost answer, the row in doubt, a look-up after --doubt-settle (2 s), a retry.
The "sent/retries" and "list" figures show how often; tests/proxyserver.py ``one_per_connection=True``
does the same.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common import ROOT, free_port, wait_for_port

CONFIG = """\
Port {port}
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 60
MaxClients 100
LogFile "{log}"
LogLevel Connect
DisableViaHeader Yes
"""
REQUEST_LINE = re.compile(r"Request \(file descriptor \d+\): (\S+) (\S+)")
PROXY_VARS = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


@dataclass
class Case:
    name: str
    env: dict[str, str]
    expect: str  # "all" through the proxy, "none" through it, or "fail" (nothing reaches the simulator)

    @property
    def slug(self) -> str:
        return re.sub(r"\W+", "-", self.name).strip("-")


@dataclass
class Outcome:
    code: int
    seconds: float
    sim: Counter[str]  # calls the simulator received, by kind
    proxied: Counter[str]  # requests tinyproxy logged, by kind
    stderr: list[str] = field(default_factory=list)  # the last lines
    sent_retries: str = "-"  # from the summary's "requests: N sent (...), retries M" line

    def matches(self, expect: str) -> bool:
        sim_total = sum(self.sim.values())
        if expect == "all":
            return self.code == 0 and sim_total > 0 and self.proxied == self.sim
        if expect == "none":
            return self.code == 0 and sim_total > 0 and not self.proxied
        return self.code != 0 and sim_total == 0


def tinyproxy_binary() -> str:
    found = shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if Path(p).exists()), None)
    if found is None:
        raise SystemExit("tinyproxy is not installed: run `apt-get update && apt-get install -y tinyproxy`")
    return found


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BULKSTATUS_") and k.lower() not in PROXY_VARS}


def direct_get(url: str, proxy: str | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy} if proxy else {}))
    with opener.open(url, timeout=10) as resp:
        return int(resp.status), resp.read()


class Sandbox:
    """`bulkstatus sandbox --port 0` in a child process: its URL (stdout) and export lines (stderr)."""

    def __init__(self, bulkstatus: str, folder: Path) -> None:
        self._err_path = folder / "sandbox.err"
        self._err = self._err_path.open("w")
        self.proc = subprocess.Popen([bulkstatus, "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, env=clean_environment(), cwd=folder)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        self.url = self.proc.stdout.readline().strip() if ready else ""
        if not self.url.startswith("http://"):
            self.stop()
            raise SystemExit("bulkstatus sandbox did not print its URL:\n" + self._err_path.read_text()[-2000:])
        exports = re.findall(r"^export (BULKSTATUS_\w+)=(.*)$", self._err_path.read_text(), re.MULTILINE)
        self.env = dict(exports)

    def stats(self) -> Counter[str]:
        data = json.loads(direct_get(self.url + "/__sim/stats")[1])
        kinds = {"create": "create_calls", "list": "list_calls", "get": "get_calls", "approve": "approve_calls",
                 "oauth": "oauth_calls"}
        return Counter({kind: int(data.get(key, 0)) for kind, key in kinds.items() if data.get(key)})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def classify(method: str, url: str) -> str:
    if method == "CONNECT":
        return "connect"
    path = urlsplit(url).path
    if path.endswith("/request-workflow/requests"):
        return "list"
    if "/request-workflow/requests/" in path:
        return "get"
    if "/request-workflow/" in path:
        return "create" if method == "POST" else "approve"
    return "oauth" if path.endswith("/oauth/token/generate") else "other"


def proxied_since(log: Path, offset: int) -> Counter[str]:
    time.sleep(0.2)  # tinyproxy writes its log line as it handles the request; let the last ones land
    text = log.read_bytes()[offset:].decode("utf-8", "replace") if log.exists() else ""
    return Counter(classify(m, u) for m, u in REQUEST_LINE.findall(text))


def run_case(case: Case, args: argparse.Namespace, folder: Path, log: Path) -> Outcome:
    sandbox = Sandbox(args.bulkstatus, folder)
    try:
        env = clean_environment() | sandbox.env | case.env | {
            "BULKSTATUS_OUT": str(folder / f"out-{case.slug}"), "BULKSTATUS_QUIET": "1",
            "BULKSTATUS_RATE": args.rate, "BULKSTATUS_BACKOFF": args.backoff}
        offset = log.stat().st_size if log.exists() else 0
        started = time.perf_counter()
        proc = subprocess.run([args.bulkstatus, "run", str(args.input)], env=env, cwd=folder, capture_output=True,
                              text=True, timeout=args.timeout, check=False)
        seconds = time.perf_counter() - started
        (folder / f"run-{case.slug}.err").write_text(proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        found = re.search(r"requests: (\d+) sent .*retries (\d+)", proc.stderr)
        return Outcome(proc.returncode, seconds, sandbox.stats(), proxied_since(log, offset), lines[-args.lines:],
                       f"{found[1]}/{found[2]}" if found else "-")
    finally:
        sandbox.stop()


def fmt(counts: Counter[str]) -> str:
    return " ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulkstatus", default=str(ROOT / ".venv" / "bin" / "bulkstatus"))
    parser.add_argument("--input", type=Path, default=ROOT / "samples" / "customers.csv")
    parser.add_argument("--rate", default="0", help="BULKSTATUS_RATE for the runs (default 0: unpaced)")
    parser.add_argument("--backoff", default="0.05", help="BULKSTATUS_BACKOFF for the runs (default 0.05 s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    parser.add_argument("--lines", type=int, default=3, help="last stderr lines shown per run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (tinyproxy log, run folders)")
    args = parser.parse_args()
    args.input = args.input.resolve()
    binary = tinyproxy_binary()
    folder = Path(tempfile.mkdtemp(prefix="bulkstatus-proxy-"))
    log, port, closed = folder / "tinyproxy.log", free_port(), free_port()
    (folder / "tinyproxy.conf").write_text(CONFIG.format(port=port, log=log))
    tinyproxy = subprocess.Popen([binary, "-d", "-c", str(folder / "tinyproxy.conf")], stdout=subprocess.DEVNULL,
                                 stderr=open(folder / "tinyproxy.err", "w"))  # noqa: SIM115 (lives as long as it)
    proxy = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        sandbox = Sandbox(args.bulkstatus, folder)  # does tinyproxy forward to a loopback target at all?
        try:
            status, _ = direct_get(sandbox.url + "/__sim/stats", proxy=proxy)
        finally:
            sandbox.stop()
        print(f"tinyproxy {proxy} -> simulator on 127.0.0.1: GET /__sim/stats answered {status}, logged as "
              f"{fmt(proxied_since(log, 0))}")
        cases = [
            Case("HTTP_PROXY", {"HTTP_PROXY": proxy}, "all"),
            Case("http_proxy", {"http_proxy": proxy}, "all"),
            Case("HTTP_PROXY+NO_PROXY", {"HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.1"}, "none"),
            Case("HTTPS_PROXY only", {"HTTPS_PROXY": proxy}, "none"),  # the API URL is http://
            Case("HTTP_PROXY closed", {"HTTP_PROXY": f"http://127.0.0.1:{closed}"}, "fail"),
        ]
        results = [(case, run_case(case, args, folder, log)) for case in cases]
    finally:
        tinyproxy.terminate()
        tinyproxy.wait(timeout=10)
    rows = len(args.input.read_text(encoding="utf-8-sig").splitlines()) - 1
    print(f"\ninput {args.input} ({rows} rows), tinyproxy {proxy}, "
          f"closed port {closed}\n")
    header = (f"{'case':<21} {'expect':<7} {'exit':>4} {'secs':>5} {'sent/retries':>12}  {'simulator received':<22} "
              f"{'via tinyproxy':<22} ok")
    print(header)
    print("-" * len(header))
    for case, out in results:
        print(f"{case.name:<21} {case.expect:<7} {out.code:>4} {out.seconds:>5.1f} {out.sent_retries:>12}  "
              f"{fmt(out.sim):<22} {fmt(out.proxied):<22} {'yes' if out.matches(case.expect) else 'NO'}")
    print("\nexpect: all = every call through the proxy; none = no call through it; fail = the run fails and "
          "nothing reaches the simulator")
    for case, out in results:
        print(f"\n{case.name}: exit {out.code}, last stderr lines:")
        for line in out.stderr:
            print(f"    {line}")
    if args.keep:
        print(f"\nkept {folder} (tinyproxy.log, run-*.err, out-*/)")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(out.matches(case.expect) for case, out in results) else 1


if __name__ == "__main__":
    sys.exit(main())
