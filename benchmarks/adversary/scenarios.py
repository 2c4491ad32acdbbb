"""Run the real bulkstatus CLI against the adversarial server, one scenario at a time, and check its files
against the server's ledger: was any customer sent twice, was any row lost, does any row say the wrong thing.

    python benchmarks/adversary/scenarios.py            # every scenario
    python benchmarks/adversary/scenarios.py --only a,e # some of them
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = Path(sys.executable)
DEFAULT_CLI = HERE.parents[1] / ".venv" / "bin" / "bulkstatus"
DONE_WITH_ID = {"submitted", "pending-exists"}  # outcomes that claim the customer's request exists
Key = tuple[str, str]  # (identifierName, identifierValue)


@dataclass
class Scenario:
    title: str
    server: list[str] = field(default_factory=list)
    cli: list[str] = field(default_factory=list)
    rows: int = 60
    rerun: bool = False  # run retry.csv again, as the next morning
    preexisting: bool = False  # an earlier run's decided requests for the same customers and labels
    token_flap: bool = False  # rotate the UI token file the way `curl ... > token` does
    timeout: float = 180.0


SCENARIOS = {
    "a": Scenario("30% of creates 504/502 after recording", ["--gateway-timeout-after-record", "0.3"], rows=40),
    "b": Scenario("201/202 answers, 30% 200 without a readable requestId; re-run retry.csv",
                  ["--answer-status", "201,202", "--no-request-id", "0.3"], rerun=True),
    "c": Scenario("earlier run's rejected/approved requests exist, 30% dropped after recording",
                  ["--drop-after-record", "0.3"], preexisting=True),
    "d": Scenario("40 in flight, 50% stalled 5 s past --timeout 2, list lag 6 s, --doubt-settle 10",
                  ["--stall-after-record", "0.5", "5", "--list-lag", "6"],
                  ["--concurrency", "40", "--timeout", "2", "--doubt-settle", "10", "--rate", "0"]),
    "e": Scenario("401 after 20 creates until the token changes; token file truncated 0.5-1 s, then rewritten",
                  ["--unauthorized-after", "20"], token_flap=True, timeout=120),
    "f": Scenario("rate limit 15/s sliding, Retry-After 1; 600 rows at --rate 20/s --concurrency 8",
                  ["--rate-limit", "15"], ["--rate", "20/s", "--concurrency", "8"], rows=600, timeout=300),
    "g": Scenario("clean run (control)"),
    "h": Scenario("as c, the server's stamps in zone-less local time +05:30 (as the docs' sample)",
                  ["--drop-after-record", "0.3", "--local-stamps", "330"], preexisting=True),
    "j": Scenario("every answer lost after recording, earlier run's requests exist, local stamps +05:30",
                  ["--drop-after-record", "1.0", "--local-stamps", "330"], preexisting=True, rows=20),
    "i": Scenario("as c, the server's stamps in zone-less local time -05:00",
                  ["--drop-after-record", "0.3", "--local-stamps", "-300"], preexisting=True),
}


@dataclass
class Run:
    exit: int | None  # None: killed after the timeout (HANG)
    wall: float
    folder: Path | None
    stderr: str


def customers(n: int) -> list[dict[str, str]]:
    kinds = [("mobile", "91980{:07d}"), ("email", "adv{}@example.com"), ("externalId", "EXT-{:05d}"),
             ("cardnumber", "5071{:08d}")]
    return [{"identifierName": kinds[i % 4][0], "identifierValue": kinds[i % 4][1].format(i), "label": "Suspended",
             "reason": f"adversary row {i + 1}"} for i in range(n)]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["identifierName", "identifierValue", "label", "reason"])
        w.writeheader()
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def key(row: dict[str, str]) -> Key:
    return row["identifierName"], row["identifierValue"]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def cli_env(url: str, out: Path, token_file: Path | None) -> dict[str, str]:
    """Made-up settings only; nothing of the caller's BULKSTATUS_* environment leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKSTATUS_")}
    env.update(BULKSTATUS_BASE_URL=url, BULKSTATUS_ORG_ID="100001", BULKSTATUS_API_USER="till.adversary",
               BULKSTATUS_API_PASSWORD="made-up-password", BULKSTATUS_TILL_ID="900001", BULKSTATUS_STORE_ID="900002",
               BULKSTATUS_ZONE_ID="900003", BULKSTATUS_CONCEPT_ID="900004",
               BULKSTATUS_INTOUCH_HOST="http://intouch.invalid", BULKSTATUS_INTOUCH_USER="till.adversary",
               BULKSTATUS_INTOUCH_PASSWORD="made-up-inner-password", BULKSTATUS_OUT=str(out), BULKSTATUS_QUIET="1")
    if token_file:
        env["BULKSTATUS_UI_TOKEN_FILE"] = str(token_file)
    else:
        env["BULKSTATUS_UI_TOKEN"] = "maker.v1"
    return env


def run_cli(cli: str, csv_path: Path, env: dict[str, str], args: list[str], timeout: float) -> Run:
    start = time.monotonic()
    try:
        done = subprocess.run([cli, "run", str(csv_path), *args], env=env, cwd=csv_path.parent,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return Run(None, time.monotonic() - start, None, err)
    lines = done.stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines and Path(lines[-1]).is_dir() else None
    return Run(done.returncode, time.monotonic() - start, folder, done.stderr)


def flap_token(token_file: Path, url: str, stop: threading.Event, seed: int) -> None:
    """When the server starts refusing the token, truncate the file (as `curl ... > token` does at once), then
    write the new token 0.5-1 s later."""
    while not stop.is_set():
        if get_json(url + "/__ledger")["expiredTokens"]:
            token_file.write_text("")
            time.sleep(random.Random(seed).uniform(0.5, 1.0))
            token_file.write_text("maker.v2\n")
            return
        time.sleep(0.05)


def judge(rows: list[dict[str, str]], results: dict[Key, dict[str, str]], failed: set[Key],
          ledger: dict[Key, list[str]]) -> tuple[int, int]:
    """(lost, wrong). Lost: no results line; or the row claims a request that the ledger does not hold while the
    ledger holds none for the customer; or the customer was never recorded and the row is in neither retry.csv
    nor fix.csv.
    Wrong: the row says failed/unprocessed while the ledger holds a request for it, or it names a requestId
    other than the ledger's request(s) for it. A row left "in doubt" (unprocessed, for resume) is neither."""
    lost = wrong = 0
    for row in rows:
        res, ids = results.get(key(row)), ledger.get(key(row), [])
        if res is None:
            lost += 1
        elif res["outcome"] in DONE_WITH_ID:
            if res["requestId"] not in ids:
                wrong, lost = (wrong + 1, lost) if ids else (wrong, lost + 1)
        elif res["outcome"] == "unprocessed" and res["error"].startswith("in doubt"):
            continue  # says honestly that it is not known yet; resume settles it (counted apart)
        elif res["outcome"] != "duplicate":
            if ids:
                wrong += 1
            elif key(row) not in failed:
                lost += 1
    return lost, wrong


def outputs(folder: Path | None) -> tuple[dict[Key, dict[str, str]], set[Key]]:
    if folder is None:
        return {}, set()
    return ({key(r): r for r in read_csv(folder / "results.csv")},
            {key(r) for name in ("retry.csv", "fix.csv") for r in read_csv(folder / name)})


def line(name: str, rows: int, doubles: int, lost: int, wrong: int, run: Run, notes: str) -> str:
    hang = run.exit is None
    crashed = "internal error" in run.stderr
    ok = not (hang or crashed or doubles or lost or wrong or run.folder is None)
    status = "HANG" if hang else str(run.exit)
    flags = "".join([", INTERNAL ERROR" if crashed else "", ", no run folder" if run.folder is None else ""])
    return (f"{name:<8} rows {rows:>4}  doubles {doubles:>3}  lost {lost:>3}  wrong {wrong:>3}  exit {status:>4}  "
            f"wall {run.wall:6.1f}s  {'PASS' if ok else 'FAIL'}  | {notes}{flags}")


def run_scenario(cli: str, name: str, sc: Scenario, tmp: Path, seed: int) -> list[str]:
    rows = customers(sc.rows)
    write_csv(tmp / f"scenario-{name}.csv", rows)
    server_args = [*sc.server, "--seed", str(seed), "--ledger-out", str(tmp / "ledger.json")]
    if sc.preexisting:
        old = [{**r, "state": "rejected" if i % 2 else "approved"} for i, r in enumerate(rows)]
        (tmp / "preexisting.json").write_text(json.dumps(old))
        server_args += ["--preexisting", str(tmp / "preexisting.json")]
    server = subprocess.Popen([str(PYTHON), str(HERE / "server.py"), "--port", "0", *server_args],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        token_file, stop = None, threading.Event()
        if sc.token_flap:
            token_file = tmp / "ui.token"
            token_file.write_text("maker.v1\n")
            threading.Thread(target=flap_token, args=(token_file, url, stop, seed), daemon=True).start()
        env = cli_env(url, tmp / "out", token_file)
        first = run_cli(cli, tmp / f"scenario-{name}.csv", env, sc.cli, sc.timeout)
        stop.set()
        report = get_json(url + "/__ledger")
        results, failed = outputs(first.folder)
        out = [report_line(name, rows, results, failed, report, first)]
        if sc.rerun and not (first.folder and read_csv(first.folder / "retry.csv")):
            out.append(f"{name}+rerun  skipped: no retry.csv rows to run again")
        elif sc.rerun and first.folder is not None:
            again = run_cli(cli, first.folder / "retry.csv", env, sc.cli, sc.timeout)
            report = get_json(url + "/__ledger")
            results2, failed2 = outputs(again.folder)
            redone = {key(r) for r in read_csv(first.folder / "retry.csv")}
            results.update({k: v for k, v in results2.items() if k in redone})
            failed = (failed - redone) | failed2
            out.append(report_line(f"{name}+rerun", rows, results, failed, report, again))
        return out
    finally:
        server.terminate()
        server.wait(10)


def report_line(name: str, rows: list[dict[str, str]], results: dict[Key, dict[str, str]], failed: set[Key],
                report: dict[str, Any], run: Run) -> str:
    ledger: dict[Key, list[str]] = {}
    for entry in report["requests"]:
        ledger.setdefault(key(entry), []).append(entry["requestId"])
    doubles = sum(len(ids) > 1 for ids in ledger.values())
    lost, wrong = judge(rows, results, failed, ledger)
    stats = report["stats"]
    faults = {k.removeprefix("fault_"): v for k, v in stats.items() if k.startswith("fault_") and k != "fault_ok"}
    outcomes = Counter("in doubt" if r["outcome"] == "unprocessed" and r["error"].startswith("in doubt")
                       else r["outcome"] for r in results.values())
    notes = (f"creates {stats.get('creates_received', 0)}, recorded {stats.get('recorded', 0)}, faults {faults or 0}, "
             f"401s {stats.get('answered_401', 0)}, outcomes {dict(outcomes)}")
    if report["config"]["rate_limit"]:
        times = [e["recordedAt"] for e in report["requests"]]
        span = max(times) - min(times) if len(times) > 1 else 0.0
        limit = report["config"]["rate_limit"]
        rate = len(times) / span if span else 0.0
        notes += (f", achieved {rate:.1f}/s = {rate / limit:.0%} of {limit}/s, "
                  f"429s {stats.get('answered_429', 0) / max(1, stats.get('creates_received', 0)):.1%} of creates")
    if run.exit not in (0, None):
        notes += f", last stderr line: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else '-'}"
    return line(name, len(rows), doubles, lost, wrong, run, notes)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated letters, e.g. a,b")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bulkstatus", default=str(DEFAULT_CLI), help="the CLI to run (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the temp folders (inputs, run folders, ledgers)")
    args = p.parse_args()
    failures = 0
    for name in args.only.split(","):
        sc = SCENARIOS[name.strip()]
        tmp = Path(tempfile.mkdtemp(prefix=f"adversary-{name}-"))
        print(f"# {name}: {sc.title}" + (f"  [{tmp}]" if args.keep else ""), flush=True)
        for text in run_scenario(args.bulkstatus, name.strip(), sc, tmp, args.seed):
            print(text, flush=True)
            failures += "  FAIL  |" in text
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
