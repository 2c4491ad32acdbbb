"""Maker run -> checker approve -> track, and the pending check, through the CLI against the simulator."""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import read_csv, write_csv

from bulkstatus.followup.track import WaitOptions, track
from bulkstatus.run.folder import Manifest
from bulkstatus.run.journal import RESULT_COLUMNS
from bulkstatus.settings import resolve
from bulkstatus.sim import config as simcfg
from bulkstatus.sim.state import PENDING, REQUEST_TYPE_VALUE, StoredRequest
from bulkstatus.timestamps import iso

STATES = ("AdminTask", "approved", "rejected", "failed")


def mobiles(n: int, start: int = 0) -> list[tuple[str, str, str, str]]:
    return [("mobile", f"9190000{start + i:05d}", "Suspended", "fraud ring") for i in range(n)]


def checker_token(tmp_path: Path) -> Path:
    path = tmp_path / "checker.token"
    path.write_text(simcfg.SANDBOX_CHECKER_TOKEN + "\n")
    return path


def ids_file(path: Path, request_ids: list[str]) -> Path:
    return write_csv(path, [(r,) for r in request_ids], header=("requestId",))


def fake_run(sim, root: Path, n: int, age: timedelta = timedelta(0), status: str = "finished") -> Path:
    """A finished run folder whose n requests the simulator holds, without sending them (for scale)."""
    folder = root / f"fake-{n}"
    folder.mkdir(parents=True)
    started = datetime.now(UTC) - age
    with (folder / "results.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(RESULT_COLUMNS)
        for i in range(n):
            request_id = str(uuid.uuid4())
            value = f"91{i:010d}"
            sim.sim.state.add(StoredRequest(
                request_id, simcfg.SANDBOX_MAKER_USER_ID, "maker", REQUEST_TYPE_VALUE, PENDING,
                started.replace(tzinfo=None), None, {}, {"queryParams": {"identifierName": "mobile",
                "identifierValue": value}, "body": {"label": "Suspended"}}, "mobile", value, "Suspended", "x"))
            out.writerow((i + 1, i + 1, "mobile", value, "Suspended", "x", "submitted", request_id, "AdminTask", 200,
                          "", "", 1, iso(started)))
    Manifest(folder, "in.csv", "0" * 64, iso(started), status, {}).save()
    (folder / "summary.json").write_text('{"status": "finished"}')
    return folder


def decide_in_sim(sim, request_ids: list[str], state: str) -> None:
    for request_id in request_ids:
        sim.sim.state.decide(request_id, state, datetime.now(UTC).replace(tzinfo=None), 1002, "ok", {})


def test_run_approve_reject_fail_then_track_counts_each_state(sim, env, cli, tmp_path):
    """200 rows: a checker approves 120 (20 fail after approval) and rejects 50; track counts every state."""
    rows = mobiles(200)
    sim.config.fail_on_approve = {value for _, value, _, _ in rows[100:120]}
    run = cli("run", write_csv(tmp_path / "suspend.csv", rows))
    assert run.code == 0, run.err
    results = read_csv(run.folder / "results.csv")
    ids = [r["requestId"] for r in results]
    token = checker_token(tmp_path)
    approve = cli("approve", run.folder, "--decision", "approved", "--message", "checked", "--yes",
                  "--only", ids_file(tmp_path / "approve.csv", ids[:120]), "--ui-token-file", token)
    assert approve.code == 0, approve.err
    reject = cli("approve", run.folder, "--decision", "rejected", "--message", "no", "--yes",
                 "--only", write_csv(tmp_path / "reject.csv", rows[120:170]), "--ui-token-file", token)
    assert reject.code == 0, reject.err
    decisions = read_csv(run.folder / "approvals.csv")
    assert len(decisions) == 170 and {d["httpStatus"] for d in decisions} == {"200"}
    assert [d["state"] for d in decisions].count("failed") == 20

    tracked = cli("track", run.folder)
    assert tracked.code == 4, tracked.err  # 30 still pending
    assert tracked.folder == run.folder
    assert "AdminTask 30, approved 100, failed 20, rejected 50" in tracked.err
    after = read_csv(run.folder / "results.csv")
    simulated = {r.request_id: r.state for r in sim.sim.state.accepted()}
    assert [r["state"] for r in after] == [simulated[i] for i in ids]
    assert all(r["stateCheckedAt"] for r in after)
    assert [r["outcome"] for r in after] == ["submitted"] * 200
    tracking = json.loads((run.folder / "summary.json").read_text())["tracking"]
    assert tracking["counts"] == {"AdminTask": 30, "approved": 100, "failed": 20, "rejected": 50}
    assert tracking["apiCalls"] == 1 and tracking["settled"] is False

    cli("approve", run.folder, "--decision", "approved", "--message", "ok", "--yes", "--ui-token-file", token)
    final = cli("track", run.folder, "--wait")
    assert final.code == 1, final.err  # every request final; some rejected or failed
    assert "approved 130, failed 20, rejected 50" in final.err
    assert [r["state"] for r in read_csv(run.folder / "results.csv")].count("approved") == 130


def test_track_exits_0_when_all_approved(sim, env, cli, tmp_path):
    """Exit 0 once every request is approved."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(5)))
    cli("approve", run.folder, "--decision", "approved", "--message", "ok", "--yes",
        "--ui-token-file", checker_token(tmp_path))
    tracked = cli("track", run.folder)
    assert tracked.code == 0, tracked.err
    assert "5 requests: approved 5" in tracked.err


def test_same_file_again_sends_nothing_for_pending_rows(sim, env, cli, tmp_path):
    """A re-run skips rows whose request is still pending (pending-exists, with that requestId)."""
    rows = mobiles(10)
    path = write_csv(tmp_path / "nightly.csv", rows)
    first = cli("run", path)
    assert first.code == 0, first.err
    first_ids = [r["requestId"] for r in read_csv(first.folder / "results.csv")]
    cli("approve", first.folder, "--decision", "rejected", "--message", "no", "--yes",
        "--only", ids_file(tmp_path / "three.csv", first_ids[:3]), "--ui-token-file", checker_token(tmp_path))
    creates, lists = sim.sim.state.create_calls, sim.sim.state.list_calls
    again = cli("run", path, "--list-limit", "3")
    assert again.code == 0, again.err  # pending-exists counts as done, like a duplicate
    assert sim.sim.state.list_calls == lists + 3  # 7 pending requests, paged by 3
    rerun = read_csv(again.folder / "results.csv")
    assert [r["outcome"] for r in rerun] == ["submitted"] * 3 + ["pending-exists"] * 7
    assert [r["requestId"] for r in rerun[3:]] == first_ids[3:]
    assert sim.sim.state.create_calls == creates + 3
    assert not read_csv(again.folder / "retry.csv") and not read_csv(again.folder / "fix.csv")
    assert json.loads((again.folder / "summary.json").read_text())["counts"]["pending-exists"] == 7
    forced = cli("run", path, "--no-pending-check")
    assert forced.code == 0, forced.err
    assert sim.sim.state.create_calls == creates + 13


def test_unreadable_pending_list_stops_the_run_before_sending(sim, env, cli, tmp_path):
    """When the pending requests cannot be listed, nothing is sent: exit 3, and the way around it."""
    result = cli("run", write_csv(tmp_path / "in.csv", mobiles(3)), "--list-limit", "501")
    assert result.code == 3, result.err
    assert "--no-pending-check" in result.err and "lower --list-limit" in result.err
    assert sim.sim.state.create_calls == 0
    assert [r["outcome"] for r in read_csv(result.folder / "results.csv")] == ["unprocessed"] * 3


def test_maker_approving_own_requests_is_refused_per_row(sim, env, cli, tmp_path):
    """The maker's token gets a 403 (code 4000) per row, all recorded, and exit status 1."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(6)))
    result = cli("approve", run.folder, "--decision", "approved", "--message", "self", "--yes")
    assert result.code == 1, result.err
    rows = read_csv(run.folder / "approvals.csv")
    assert len(rows) == 6
    assert {(r["httpStatus"], r["errorCode"], r["state"]) for r in rows} == {("403", "4000", "")}
    assert sorted(r["row"] for r in rows) == [str(n) for n in range(1, 7)]
    assert all(r["error"] and r["decision"] == "approved" and r["decidedAt"] for r in rows)
    assert {r.state for r in sim.sim.state.accepted()} == {"AdminTask"}
    assert simcfg.SANDBOX_MAKER_TOKEN not in result.err + result.out


def test_approve_refuses_to_ask_without_a_terminal(sim, env, cli, tmp_path):
    """Without --yes and with stdin not a terminal, approve exits 2 before any call."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(2)))
    result = cli("approve", run.folder, "--decision", "approved", "--message", "m")
    assert result.code == 2
    assert "pass --yes" in result.err and len(result.err.strip().splitlines()) == 1
    assert sim.sim.state.approve_calls == 0 and not (run.folder / "approvals.csv").exists()


def test_track_10000_rows_takes_20_list_calls(sim, env, cli, tmp_path):
    """A 10,000-row run is tracked with 20 list pages of 500, and no GET."""
    folder = fake_run(sim, tmp_path, 10_000)
    result = cli("track", folder)
    assert result.code == 4, result.err
    tracking = json.loads((folder / "summary.json").read_text())["tracking"]
    assert tracking["requests"] == 10_000 and tracking["counts"] == {"AdminTask": 10_000}
    assert (tracking["apiCalls"], tracking["listCalls"], tracking["getCalls"]) == (20, 20, 0)
    assert sim.sim.state.stats()["list_calls"] == 20


def test_old_requests_are_found_past_the_date_window(sim, env, cli, tmp_path):
    """Requests older than the window: an undated pass when many are missing, a GET each when few."""
    many = fake_run(sim, tmp_path / "many", 30)
    for stored in sim.sim.state.accepted():
        stored.start_time -= timedelta(days=10)
    result = cli("track", many, "--list-limit", "10")
    assert result.code == 4, result.err
    tracking = json.loads((many / "summary.json").read_text())["tracking"]
    assert tracking["counts"] == {"AdminTask": 30}
    assert (tracking["listCalls"], tracking["getCalls"]) == (1 + 3, 0)  # an empty window, then 3 pages

    few = fake_run(sim, tmp_path / "few", 3)
    ids = [r["requestId"] for r in read_csv(few / "results.csv")]
    for request_id in ids:
        sim.sim.state.get(request_id).start_time -= timedelta(days=20)  # type: ignore[union-attr]
    decide_in_sim(sim, ids[:1], "approved")
    result = cli("track", few, "--list-limit", "5")
    tracking = json.loads((few / "summary.json").read_text())["tracking"]
    # 33 requests in 7 pages; after the first page 6 pages are left for 3 ids: a GET each is cheaper.
    assert (tracking["listCalls"], tracking["getCalls"]) == (1 + 1, 3)
    assert result.code == 4 and tracking["counts"] == {"AdminTask": 2, "approved": 1}


def test_track_wait_polls_until_every_request_is_final(sim, env, tmp_path):
    """--wait looks again (for open requests only) until all are final; the sleep is a fake."""
    folder = fake_run(sim, tmp_path, 6)
    ids = [r["requestId"] for r in read_csv(folder / "results.csv")]
    plan = iter([(ids[:2], "approved"), (ids[2:5], "rejected"), (ids[5:], "failed")])
    seen: list[tuple[int, int]] = []

    async def fake_sleep(seconds: float) -> None:
        assert seconds == 7
        decide_in_sim(sim, *next(plan))

    options = WaitOptions(wait=True, timeout=100, interval=7, sleep=fake_sleep,
                          on_poll=lambda done, total: seen.append((done, total)))
    report = asyncio.run(track(folder, resolve({}), options))
    assert seen == [(0, 6), (2, 6), (5, 6), (6, 6)]
    assert report.counts == {"approved": 2, "rejected": 3, "failed": 1} and report.polls == 4
    assert not report.timed_out


def test_track_wait_gives_up_at_the_timeout(sim, env, tmp_path):
    """With nothing decided, --wait stops at --wait-timeout and reports the requests still pending."""
    folder = fake_run(sim, tmp_path, 2)
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    options = WaitOptions(wait=True, timeout=25, interval=10, sleep=fake_sleep, clock=lambda: now[0])
    report = asyncio.run(track(folder, resolve({}), options))
    assert report.timed_out and report.polls == 4 and now[0] == 25
    assert report.counts == {"AdminTask": 2}


def test_track_refuses_an_unfinished_run(sim, env, cli, tmp_path):
    """An unfinished run is not rewritten: exit 2 with the command that finishes it."""
    folder = fake_run(sim, tmp_path, 1, status="interrupted")
    result = cli("track", folder)
    assert result.code == 2
    assert "bulkstatus resume" in result.err and sim.sim.state.stats()["list_calls"] == 0


def test_approve_only_matches_values_results_csv_guards(sim, env, cli, tmp_path):
    """A `+` mobile or an `@` id is written `="..."` in results.csv (no formula in a spreadsheet); approve
    --only with the original input still finds those rows, and approvals.csv guards them the same way."""
    rows = [("mobile", "+919853464010", "Suspended", "x"), ("mobile", "919853464012", "Suspended", "x"),
            ("externalId", "@list", "Suspended", "x")]
    path = write_csv(tmp_path / "guarded.csv", rows)
    run = cli("run", path)
    assert run.code == 0, run.err
    approve = cli("approve", run.folder, "--decision", "approved", "--message", "ok", "--yes", "--only", path,
                  "--ui-token-file", checker_token(tmp_path))
    assert approve.code == 0, approve.err
    assert "match no submitted request" not in approve.err
    decided = read_csv(run.folder / "approvals.csv")
    assert {d["identifierValue"] for d in decided} == {'="+919853464010"', '="@list"', "919853464012"}
    assert {r.state for r in sim.sim.state.accepted()} == {"approved"}
