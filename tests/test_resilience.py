"""Never lose or double a row: faults, kill -9 and resume, SIGTERM, expiring and wrong credentials."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, assert_no_secrets, read_csv, write_csv

from bulkstatus.sim import config as simcfg


def make_rows(n: int, seed: int = 1) -> list[tuple[str, str, str, str]]:
    rnd = random.Random(seed)
    values = rnd.sample(range(10**9, 10**10), n)
    return [("mobile", f"91{v}", "Suspended", f"fraud batch {i}") for i, v in enumerate(values)]


def accepted_counts(sim) -> Counter[tuple[str, str]]:
    return Counter((r.identifier_value, r.label) for r in sim.sim.state.accepted())


def assert_exactly_once(sim, folder: Path, rows) -> None:
    """Every row accepted by the simulator exactly once, and results.csv names exactly those requests."""
    counts = accepted_counts(sim)
    doubled = [k for k, c in counts.items() if c > 1]
    assert not doubled, f"{len(doubled)} customers got two requests: {doubled[:3]}"
    assert set(counts) == {(r[1], r[2]) for r in rows}, "some rows were never accepted"
    results = read_csv(folder / "results.csv")
    assert [r["row"] for r in results] == [str(i) for i in range(1, len(rows) + 1)]
    assert {r["outcome"] for r in results} == {"submitted"}
    assert {r["requestId"] for r in results} == {r.request_id for r in sim.sim.state.accepted()}


def test_five_thousand_rows_through_faults(sim, env, cli, tmp_path):
    """10% transient 5xx, 1% 429s, latency and dropped connections: nothing lost, nothing doubled."""
    rows = make_rows(5000)
    path = write_csv(tmp_path / "faulty.csv", rows)
    config = sim.config
    config.seed = 42
    sim.sim.apply_config({"seed": 42})
    config.error_rate = 0.10
    config.throttle_rate = 0.001  # 429s by chance, not by the machine's speed
    config.retry_after = 0
    config.latency = (0.0, 0.004)
    config.drop_before_rate = 0.01
    config.drop_after_rate = 0.01
    started = time.monotonic()
    result = cli("run", "--rate", "700/s", "--concurrency", "16", "--max-retries", "12", "--doubt-settle", "0.2", path)
    duration = time.monotonic() - started
    results = read_csv(result.folder / "results.csv")
    assert len(results) == 5000 and all(r["outcome"] for r in results)
    accepted = {r.request_id for r in sim.sim.state.accepted()}
    assert {r["requestId"] for r in results if r["requestId"]} == accepted
    assert not [k for k, c in accepted_counts(sim).items() if c > 1]
    summary = json.loads((result.folder / "summary.json").read_text())
    stats = Counter(call.outcome for call in sim.sim.state.received())
    print(f"\nfault run: 5000 rows in {duration:.1f} s; simulator saw {dict(stats)}; "
          f"retries {summary['retries']}, throttled {summary['throttled']}, "
          f"adopted {summary['adoptedAfterLostAnswer']}, lookups {summary['lookupCalls']}, "
          f"outcomes {summary['counts']}")
    assert stats["transient-error"] > 100 and stats["rate-limited"] > 0, stats
    assert stats["dropped-after"] > 0 and stats["dropped-before"] > 0
    assert summary["adoptedAfterLostAnswer"] >= stats["dropped-after"] * 0.5
    assert_no_secrets(result.folder, result.out, result.err)
    # A 429 does not use up a row's retries, and 12 retries outlast a 10% error rate.
    assert result.code == 0 and summary["counts"]["submitted"] == 5000


def _spawn(args: list[str], environ: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bulkstatus", *args], env=environ, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=environ["_CWD"])


def _child_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BULKSTATUS_")}
    environ.update(env)
    environ["_CWD"] = str(tmp_path)
    environ["PYTHONPATH"] = str(ROOT)
    return environ


def _wait_accepted(sim, at_least: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.sim.state.accepted()) < at_least:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.005)


@pytest.mark.parametrize("kill_after,drop_after", [(5, 0.0), (60, 0.3), (150, 0.0), (230, 0.5)])
def test_kill_9_then_resume_sends_each_row_exactly_once(sim, env, tmp_path, cli, kill_after, drop_after):
    """kill -9 at several points (also with answers lost after the server recorded the request)."""
    rows = make_rows(300, seed=kill_after)
    path = write_csv(tmp_path / "night.csv", rows)
    sim.config.drop_after_rate = drop_after
    sim.sim.apply_config({"seed": kill_after})
    environ = _child_env(env, tmp_path)
    proc = _spawn(["run", "--rate", "400/s", "--quiet", str(path)], environ)
    try:
        _wait_accepted(sim, kill_after)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    [folder] = list((tmp_path / "out").iterdir())
    sim.config.drop_after_rate = 0.0
    # A plain re-run is refused: it would double what the killed run sent.
    again = cli("run", path)
    assert again.code == 2 and f"bulkstatus resume {folder}" in again.err
    result = cli("resume", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)
    assert_no_secrets(folder, result.out, result.err)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"]["submitted"] == 300


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_stops_cleanly_and_resume_completes(sim, env, tmp_path, cli, signum):
    """SIGTERM, and SIGHUP (the terminal closed): exit 130, the rest `unprocessed` in retry.csv, and resume
    finishes the run."""
    rows = make_rows(400, seed=9)
    path = write_csv(tmp_path / "term.csv", rows)
    proc = _spawn(["run", "--rate", "200/s", str(path)], _child_env(env, tmp_path))
    _wait_accepted(sim, 40)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    folder = Path(out.strip().splitlines()[-1])
    failed = read_csv(folder / "retry.csv")
    assert failed and {f["outcome"] for f in failed} == {"unprocessed"}
    results = read_csv(folder / "results.csv")
    assert len(results) == 400
    assert "bulkstatus resume" in err
    result = cli("resume", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)
    assert not read_csv(folder / "retry.csv")


def test_rotated_ui_token_and_short_oauth_lifetime(sim, env, tmp_path, cli, monkeypatch):
    """The UI token rotates mid-run and OAuth tokens live 1 s: no row fails for auth."""
    token_file = tmp_path / "ui.jwt"
    token_file.write_text(simcfg.SANDBOX_MAKER_TOKEN + "\n")
    monkeypatch.delenv("BULKSTATUS_UI_TOKEN")
    monkeypatch.setenv("BULKSTATUS_UI_TOKEN_FILE", str(token_file))
    monkeypatch.delenv("BULKSTATUS_API_USER")
    monkeypatch.delenv("BULKSTATUS_API_PASSWORD")
    monkeypatch.setenv("BULKSTATUS_OAUTH_KEY", simcfg.SANDBOX_OAUTH_KEY)
    monkeypatch.setenv("BULKSTATUS_OAUTH_SECRET", simcfg.SANDBOX_OAUTH_SECRET)
    sim.config.oauth_ttl_seconds = 1
    rows = make_rows(250, seed=3)
    path = write_csv(tmp_path / "rot.csv", rows)

    def rotate() -> None:
        _wait_accepted(sim, 80)
        token_file.write_text("rotated-maker-token\n")
        sim.config.maker_tokens = {"rotated-maker-token": simcfg.SANDBOX_MAKER_USER_ID}

    rotator = threading.Thread(target=rotate, daemon=True)
    rotator.start()
    result = cli("run", "--rate", "100/s", path)
    rotator.join(timeout=5)
    assert result.code == 0, result.err
    assert_exactly_once(sim, result.folder, rows)
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["authRefreshes"] >= 1
    assert sim.sim.state.stats()["oauth_calls"] >= 2
    assert_no_secrets(result.folder, result.out, result.err,
                      secrets=["rotated-maker-token", simcfg.SANDBOX_MAKER_TOKEN, simcfg.SANDBOX_OAUTH_SECRET])


def test_wrong_token_aborts_within_a_few_requests(sim, env, tmp_path, cli, monkeypatch):
    """A wrong UI token: exit 3 after a few requests, every other row `unprocessed`, one clear line."""
    monkeypatch.setenv("BULKSTATUS_UI_TOKEN", "wrong-token-value")
    path = write_csv(tmp_path / "wrong.csv", make_rows(2000, seed=4))
    result = cli("run", "--rate", "0", path)
    assert result.code == 3, result.err
    assert sim.sim.state.stats()["create_calls"] <= 20
    results = read_csv(result.folder / "results.csv")
    assert len(results) == 2000 and {r["outcome"] for r in results} == {"unprocessed"}
    assert "401" in result.err and "BULKSTATUS_UI_TOKEN" in result.err
    assert_no_secrets(result.folder, result.out, result.err, secrets=["wrong-token-value"])


def test_resume_refuses_a_changed_input(sim, env, tmp_path, cli):
    """Resume stops with exit 2 when the input's SHA-256 changed."""
    path = write_csv(tmp_path / "c.csv", make_rows(5))
    sim.config.maker_tokens = {}
    first = cli("run", path)
    assert first.code == 3
    path.write_text(path.read_text() + "mobile,919000000001,Suspended,x\n")
    result = cli("resume", first.folder)
    assert result.code == 2 and "changed since the run started" in result.err


def test_api_down_for_longer_than_the_bound_aborts(sim, env, tmp_path, cli):
    """Every create answers 5xx: the run stops after --abort-after seconds with exit 3, not 2,000 failures."""
    sim.config.error_rate = 1.0
    path = write_csv(tmp_path / "down.csv", make_rows(2000, seed=5))
    result = cli("run", "--abort-after", "0.3", "--max-retries", "1000", "--rate", "200/s", path)
    assert result.code == 3, result.err
    assert "looks unavailable" in result.err and "bulkstatus resume" in result.err
    outcomes = Counter(r["outcome"] for r in read_csv(result.folder / "results.csv"))
    assert outcomes["unprocessed"] > 1900 and outcomes["failed"] == 0
    assert sim.sim.state.stats()["create_calls"] < 400


def test_forbidden_endpoint_aborts_at_once(sim, env, tmp_path, cli):
    """A 404 from the create endpoint (wrong base URL) stops the run at once: exit 3, one clear line."""
    path = write_csv(tmp_path / "nf.csv", make_rows(500, seed=6))
    result = cli("run", "--no-pending-check", "--base-url", sim.url + "/wrong-prefix", path)
    assert result.code == 3, result.err
    assert "not found (404)" in result.err and "--base-url" in result.err
    assert {r["outcome"] for r in read_csv(result.folder / "results.csv")} == {"unprocessed"}


def test_second_signal_stops_at_once_and_resume_still_works(sim, env, tmp_path, cli):
    """SIGINT twice: exit 130 at once; the journal still lets resume finish without doubles."""
    rows = make_rows(300, seed=11)
    path = write_csv(tmp_path / "twice.csv", rows)
    sim.config.latency = (0.05, 0.1)
    proc = _spawn(["run", "--rate", "100/s", "--grace", "30", str(path)], _child_env(env, tmp_path))
    _wait_accepted(sim, 20)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    folder = Path(out.strip().splitlines()[-1])
    sim.config.latency = (0.0, 0.0)
    result = cli("resume", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)


def test_ctrl_c_during_a_slow_pending_check_sends_nothing(sim, env, tmp_path, cli):
    """SIGINT while the pending check waits on the API (the pre-pass reads the file beside it): exit 130
    soon, nothing sent, every row recorded unprocessed; resume then sends each row once."""
    rows = make_rows(3000, seed=23)
    path = write_csv(tmp_path / "slow-list.csv", rows)
    sim.config.list_latency = (60.0, 60.0)
    proc = _spawn(["run", "--rate", "0", str(path)], _child_env(env, tmp_path))
    deadline = time.monotonic() + 20
    while sim.sim.state.list_calls < 1:
        assert time.monotonic() < deadline and proc.poll() is None, "the pending check did not start"
        time.sleep(0.005)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 130, err
    assert time.monotonic() - interrupted < 30  # not held by the 60 s list call
    assert "Traceback" not in err and "never retrieved" not in err
    assert sim.sim.state.create_calls == 0
    folder = Path(out.strip().splitlines()[-1])
    assert [r["outcome"] for r in read_csv(folder / "results.csv")] == ["unprocessed"] * len(rows)
    sim.config.list_latency = (0.0, 0.0)
    result = cli("resume", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)


@pytest.mark.timeout(30)
def test_oauth_secret_refused_aborts_without_hanging(sim, env, tmp_path, cli, monkeypatch):
    """A wrong OAuth secret: exit 3 with a line naming the secret's variable; it never hangs."""
    monkeypatch.delenv("BULKSTATUS_API_USER")
    monkeypatch.delenv("BULKSTATUS_API_PASSWORD")
    monkeypatch.setenv("BULKSTATUS_OAUTH_KEY", simcfg.SANDBOX_OAUTH_KEY)
    monkeypatch.setenv("BULKSTATUS_OAUTH_SECRET", "not-the-secret")
    path = write_csv(tmp_path / "oauth.csv", make_rows(100, seed=12))
    for extra in ([], ["--no-pending-check"]):
        result = cli("run", "--new-run", *extra, path)
        assert result.code == 3, result.err
        assert "BULKSTATUS_OAUTH_SECRET" in result.err and "not-the-secret" not in result.err
        assert {r["outcome"] for r in read_csv(result.folder / "results.csv")} == {"unprocessed"}
    assert sim.sim.state.stats()["create_calls"] == 0


def test_strict_and_dry_run_resume_refusals(sim, env, tmp_path, cli):
    """--strict sends nothing when a row is invalid; a dry run cannot be resumed; exit 2 for both."""
    path = write_csv(tmp_path / "strict.csv", [("mobile", "919800000001", "Suspended", "x"),
                                               ("mobile", "12-34", "Suspended", "x")])
    strict = cli("run", "--strict", path)
    assert strict.code == 2 and "--strict: 1 row(s) are invalid" in strict.err
    assert sim.sim.state.stats()["create_calls"] == 0
    dry = cli("run", "--dry-run", path)
    assert dry.code == 1
    again = cli("resume", dry.folder)
    assert again.code == 2 and "is a dry run" in again.err
    missing = cli("resume", tmp_path / "nowhere")
    assert missing.code == 2 and "not a bulkstatus run folder" in missing.err


def test_failed_look_up_leaves_the_run_resumable(sim, env, tmp_path, cli):
    """Answers lost after recording and a list endpoint that answers 503: the rows stay unprocessed, the run is
    `incomplete` (not finished), and resume adopts the requests the server holds: nothing sent twice."""
    rows = make_rows(30, seed=11)
    path = write_csv(tmp_path / "lookup.csv", rows)
    sim.config.drop_after_rate = 1.0
    sim.config.list_error_rate = 1.0
    first = cli("run", "--no-pending-check", "--max-retries", "2", path)
    assert first.code == 1, first.err
    assert "bulkstatus resume" in first.err
    run = json.loads((first.folder / "summary.json").read_text())
    assert run["status"] == "incomplete" and run["counts"]["unprocessed"] == 30
    # In doubt: sent, answer lost. Only resume may settle them, so a re-run of retry.csv cannot double them.
    assert run["inDoubt"] == 30 and read_csv(first.folder / "retry.csv") == []
    assert "in doubt: 30 rows" in first.err
    assert len(sim.sim.state.accepted()) == 30  # the server holds every request; the run could not see them
    sim.config.drop_after_rate = 0.0
    sim.config.list_error_rate = 0.0
    # No answer ever told whose requests are ours: the user gives the maker's id (or resumes once more later).
    maker = {r.user_id for r in sim.sim.state.accepted()}.pop()
    again = cli("resume", "--maker-user-id", str(maker), first.folder)
    assert again.code == 0, again.err
    assert_exactly_once(sim, first.folder, rows)
    summary = json.loads((first.folder / "summary.json").read_text())
    assert summary["status"] == "finished"
    # The whole run in its summary and its log: both sessions, summed.
    assert [s["status"] for s in summary["sessions"]] == ["incomplete", "finished"]
    assert summary["requestsStarted"] == run["requestsStarted"] == 30  # the resume only looked up
    assert summary["lookupCalls"] == run["lookupCalls"] + summary["sessions"][1]["lookupCalls"]
    assert summary["adoptedAfterLostAnswer"] == 30
    log_lines = (first.folder / "run.log").read_text().splitlines()
    assert [line.split(" ")[2] for line in log_lines if " INFO run: input " in line
            or " INFO resume: input " in line] == ["run:", "resume:"]
    ended = [line for line in log_lines if " ended: status " in line]
    assert len(ended) == 2 and "status incomplete, exit 1" in ended[0] and "status finished, exit 0" in ended[1]


def test_overlapping_runs_of_one_input_refuse_at_once(sim, env, tmp_path, cli):
    """A second run of the same input (another --out, another name) while the first sends: exit 2 at once,
    naming the other process; then kill -9 leaves no stale lock, and resume of the killed run goes on."""
    rows = make_rows(300, seed=21)
    path = write_csv(tmp_path / "nightly.csv", rows)
    copy = tmp_path / "manual-copy.csv"
    copy.write_bytes(path.read_bytes())
    environ = _child_env(env, tmp_path)
    first = _spawn(["run", "--rate", "100/s", "--quiet", str(path)], environ)
    try:
        _wait_accepted(sim, 10)
        started = time.monotonic()
        second = cli("run", "--out", tmp_path / "elsewhere", copy)
        assert second.code == 2 and time.monotonic() - started < 5, second.err
        assert "another bulkstatus is sending this same input" in second.err
        assert f"pid {first.pid}" in second.err and "run folder" in second.err
        assert not (tmp_path / "elsewhere").exists() or not list((tmp_path / "elsewhere").iterdir())
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    [folder] = list((tmp_path / "out").iterdir())
    result = cli("resume", folder)  # the dead process's locks went with it
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)


def test_two_resumes_of_one_folder(sim, env, tmp_path, cli):
    """While one resume runs, a second resume of the same folder is refused (exit 2); nothing doubled."""
    rows = make_rows(300, seed=22)
    path = write_csv(tmp_path / "twice.csv", rows)
    environ = _child_env(env, tmp_path)
    killed = _spawn(["run", "--rate", "400/s", "--quiet", str(path)], environ)
    _wait_accepted(sim, 20)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    [folder] = list((tmp_path / "out").iterdir())
    resumed = _spawn(["resume", "--rate", "100/s", "--quiet", str(folder)], environ)
    try:
        _wait_accepted(sim, len(sim.sim.state.accepted()) + 10)
        again = cli("resume", folder)
        assert again.code == 2, again.err
        assert f"another bulkstatus is using this run folder (pid {resumed.pid}, run folder {folder})" in again.err
        _, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert_exactly_once(sim, folder, rows)


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail (EFBIG), as on a full disk
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [4_000, 15_000, 30_000])
def test_full_disk_stops_cleanly_and_resume_completes(sim, env, tmp_path, cli, limit):
    """Writes start failing part way (the journal, results.csv, retry.csv or fix.csv reaching the limit first):
    exit 3 with one line naming the file and the fix, no traceback; no request goes out whose in-flight
    line was not written; after "freeing space", resume gives every row once, in order, no torn line."""
    rows = make_rows(300, seed=limit)
    path = write_csv(tmp_path / "full.csv", rows)
    environ = _child_env(env, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "bulkstatus", "run", "--rate", "0", "--quiet", str(path)],
                            env=environ, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=environ["_CWD"], preexec_fn=_file_size_limit(limit))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "internal error" not in err
    [line] = [x for x in err.splitlines() if "cannot write" in x]
    assert "free space on the disk of" in line and "then `bulkstatus resume" in line
    [folder] = list((tmp_path / "out").iterdir())
    sent = len(sim.sim.state.accepted())
    journal = (folder / "journal.jsonl").read_bytes()
    in_flight = {json.loads(x)["s"] for x in journal.splitlines() if x.startswith(b'{"s"') and x.endswith(b"}")}
    assert sent <= len(in_flight), "a request went out whose in-flight line was not written"
    result = cli("resume", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)
    raw = (folder / "results.csv").read_bytes()
    assert raw.count(b"\r\n") == 301 and raw.endswith(b"\r\n")


def test_input_rewritten_during_the_run_stops_it(sim, env, tmp_path, cli):
    """The input rewritten in place (`> file`) while the run reads it: exit 3 at once, one line;
    the rows sent so far stay recorded; resume refuses until the original content is back, then finishes:
    no customer of the other content is sent, none of the original twice."""
    rows = make_rows(3000, seed=31)
    path = write_csv(tmp_path / "export.csv", rows)
    original = path.read_bytes()
    proc = _spawn(["run", "--rate", "300/s", "--quiet", str(path)], _child_env(env, tmp_path))
    try:
        _wait_accepted(sim, 50)
        other = make_rows(3000, seed=32)
        write_csv(path, other)  # truncated and rewritten, as an export job does
        at_change = len(sim.sim.state.accepted())
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    [line] = [x for x in err.splitlines() if "changed while the run read it" in x]
    assert "put the original file back, then `bulkstatus resume" in line
    assert "not reached: about" in err and "resume records them" in err
    sent = {r.identifier_value for r in sim.sim.state.accepted()}
    assert sent <= {r[1] for r in rows}, "a row of the rewritten file was sent"
    # At once: the open file is looked at every 0.1 s, not only when the next chunk is read (1,000 rows
    # later, at 300 a second over 3 s, with the old check).
    assert len(sent) - at_change < 500, (at_change, len(sent))
    [folder] = list((tmp_path / "out").iterdir())
    refused = cli("resume", folder)
    assert refused.code == 2 and "changed since the run started" in refused.err
    path.write_bytes(original)
    result = cli("resume", "--rate", "0", folder)
    assert result.code == 0, result.err
    assert_exactly_once(sim, folder, rows)


def test_a_planted_link_in_the_lock_folder_is_not_followed(sim, env, tmp_path, cli, monkeypatch):
    """The machine's lock folder is writable by everyone: a link planted under a lock's name is refused
    (exit 2, one line), and the file it points to is left as it was."""
    import hashlib

    path = write_csv(tmp_path / "linked.csv", make_rows(5, seed=41))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    key = hashlib.sha256(f"{sha}\n{env['BULKSTATUS_ORG_ID']}".encode()).hexdigest()[:32]
    locks = Path(env["BULKSTATUS_LOCK_DIR"])
    locks.mkdir(parents=True, exist_ok=True)
    (locks / f"input-{key}.lock").symlink_to(victim)
    result = cli("run", path)
    assert result.code == 2 and "cannot use the lock file" in result.err and "remove it" in result.err
    assert victim.read_text() == "precious" and not sim.sim.state.accepted()
