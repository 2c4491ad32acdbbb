"""After the checker: why a request was rejected or failed, rejected.csv to run again, approvals.csv's
outcome column, and the confirmation prompt with and without a terminal."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_csv, write_csv
from test_workflow import checker_token, decide_in_sim, ids_file, mobiles

from bulkstatus.api.reasons import MAX_CHARS, request_reason
from bulkstatus.followup.approve import APPROVAL_COLUMNS, decide, old_outcome, plan
from bulkstatus.followup.redo import REDO_COLUMNS
from bulkstatus.settings import resolve
from bulkstatus.sim import config as simcfg

V2_8015 = {"errors": [{"status": False, "code": 8015, "message": "Customer not found"}], "warnings": []}
SECRET_HEADERS = {"IntouchAPITask-Payload": {"headers": {"Authorization": "Basic c2VjcmV0"}, "body": {}}}


@pytest.mark.parametrize(("item", "reason"), [
    ({"state": "rejected", "details": {"AdminTask-Payload": {"actionMessage": "hold: case open"}}},
     "hold: case open"),
    ({"state": "failed", "details": {"AdminTask-Payload": {"actionMessage": "checked"},
                                     "IntouchAPITask_Output": V2_8015}}, "Customer not found (code 8015)"),
    # An approval's message is not why it failed; with nothing else said, there is no reason.
    ({"state": "failed", "details": {"AdminTask-Payload": {"actionMessage": "checked"}}}, ""),
    ({"state": "failed", "details": {"ValidatePayload_Output": True, "Other-Output": {"message": "bad till"}}},
     "bad till"),
    ({"state": "failed", "details": {"ValidatePayload_Output": True}, "error": {"code": "E1", "reason": "x"}},
     "x (code E1)"),
    ({"state": "rejected", "comments": ["", {"comment": "duplicate\n request"}]}, "duplicate request"),
    ({"state": "rejected", "reason": "a\x1b[31m red\tline"}, "a[31m red line"),
    ({"state": "rejected", "details": {"AdminTask-Payload": {"actionMessage": ""}}, "message": "empty note"},
     "empty note"),
    ({"state": "rejected", "details": {**SECRET_HEADERS}}, ""),  # the inner payload's headers are never read
    ({"state": "approved", "details": {"AdminTask-Payload": {"actionMessage": "fine"}}}, ""),
    ({"state": "AdminTask", "reason": "x"}, ""),
    ({"state": "rejected", "details": "not an object", "errors": "gateway said no"}, "gateway said no"),
    ({"state": "rejected", "reason": 5}, ""),
    ({"state": "rejected", "reason": "y" * 400}, "y" * (MAX_CHARS - 3) + "..."),
])
def test_request_reason(item, reason):
    """Where a rejected or failed request's reason is read from, and what is left out."""
    assert request_reason(item) == reason


@pytest.mark.parametrize(("row", "outcome"), [
    ({"state": "approved", "httpStatus": "200", "error": ""}, "decided"),
    ({"state": "failed", "httpStatus": "200", "error": ""}, "decided"),
    ({"state": "", "httpStatus": "403", "error": "Access denied"}, "refused"),
    ({"state": "", "httpStatus": "400", "error": "Request is not awaiting a decision"}, "refused"),
    ({"state": "", "httpStatus": "", "error": "no answer: timeout; run approve again to retry"}, "no-answer"),
    ({"state": "", "httpStatus": "", "error": "in doubt: the answer was lost"}, "in-doubt"),
    ({"state": "AdminTask", "httpStatus": "200", "error": ""}, "not-applied"),
])
def test_old_approvals_rows_get_their_outcome(row, outcome):
    """A row of an approvals.csv written before the outcome column is given the outcome it holds."""
    assert old_outcome(row) == outcome


def test_rejected_and_failed_rows_come_back_with_their_reason_and_run_again(sim, env, cli, tmp_path):
    """2 rejected with a message, 1 failed after approval: the reasons reach track's stderr, results.csv and
    rejected.csv, which validate and run (against the simulator and --sandbox) take as it is."""
    rows = [*mobiles(4), ("mobile", "+919853464010", "Suspended", "=cmd|' /C calc'!A0"),
            ("email", "ghost.later@example.com", "Fraud Suspected", "chargebacks")]
    sim.config.fail_on_approve = {"ghost.later@example.com"}
    run = cli("run", write_csv(tmp_path / "suspend.csv", rows))
    assert run.code == 0, run.err
    ids = [r["requestId"] for r in read_csv(run.folder / "results.csv")]
    token = checker_token(tmp_path)
    reject = cli("approve", run.folder, "--decision", "rejected", "--message", "hold: case FR-2291 open", "--yes",
                 "--only", ids_file(tmp_path / "hold.csv", [ids[1], ids[4]]), "--ui-token-file", token)
    assert reject.code == 0, reject.err
    approve = cli("approve", run.folder, "--decision", "approved", "--message", "checked", "--yes",
                  "--ui-token-file", token)
    assert approve.code == 0, approve.err

    tracked = cli("track", run.folder)
    assert tracked.code == 1, tracked.err
    redo = run.folder / "rejected.csv"
    assert f"3 rejected or failed after approval, each with its reason (stateReason) in {redo}" in tracked.err
    assert f"bulkstatus run {redo}" in tracked.err
    assert "    2 x rejected: hold: case FR-2291 open" in tracked.err
    assert "    1 x failed: Customer not found for the given identifiers (code 8015)" in tracked.err
    assert tracked.out.strip().splitlines()[-1] == str(run.folder)

    results = read_csv(run.folder / "results.csv")
    assert [r["stateReason"] for r in results] == [
        "", "hold: case FR-2291 open", "", "", "hold: case FR-2291 open",
        "Customer not found for the given identifiers (code 8015)"]
    redone = read_csv(redo)
    assert tuple(redone[0]) == REDO_COLUMNS
    assert [(r["row"], r["identifierValue"], r["reason"], r["state"], r["requestId"]) for r in redone] == [
        ("2", "919000000001", "fraud ring", "rejected", ids[1]),
        ("5", '="+919853464010"', "=\"=cmd|' /C calc'!A0\"", "rejected", ids[4]),
        ("6", "ghost.later@example.com", "chargebacks", "failed", ids[5])]
    assert [r["stateReason"] for r in redone] == [results[i]["stateReason"] for i in (1, 4, 5)]
    assert [r["sourceRow"] for r in redone] == ["2", "5", "6"]

    validated = cli("validate", redo)
    assert validated.code == 0, validated.err
    again = cli("run", redo)
    assert again.code == 0, again.err
    assert [r["sourceRow"] for r in read_csv(again.folder / "results.csv")] == ["2", "5", "6"]
    assert [r["outcome"] for r in read_csv(again.folder / "results.csv")] == ["submitted"] * 3
    sent = sim.sim.state.accepted()[-3:]
    assert [(s.identifier_value, s.label, s.reason) for s in sent] == [
        (v, label, reason) for _, v, label, reason in (rows[1], rows[4], rows[5])]
    sandboxed = cli("run", "--sandbox", "--rate", "0", redo)
    assert sandboxed.code == 0, sandboxed.err

    # Once the failed customer is fixed and approved again, a second track rewrites rejected.csv to match.
    decide_in_sim(sim, [ids[1]], "approved")
    cli("track", run.folder)
    assert [r["row"] for r in read_csv(redo)] == ["5", "6"]
    tracking = json.loads((run.folder / "summary.json").read_text())["tracking"]
    assert tracking["redoRows"] == 2 and tracking["redoFile"] == "rejected.csv"
    assert tracking["reasons"] == {"rejected: hold: case FR-2291 open": 1,
                                   "failed: Customer not found for the given identifiers (code 8015)": 1}


def test_a_rejection_without_a_message_is_still_redone(sim, env, cli, tmp_path):
    """An empty actionMessage: the row is in rejected.csv, its stateReason empty, the summary says so."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(2)))
    cli("approve", run.folder, "--decision", "rejected", "--message", "", "--yes",
        "--ui-token-file", checker_token(tmp_path))
    tracked = cli("track", run.folder)
    assert tracked.code == 1, tracked.err
    assert "    2 x rejected: (no reason given)" in tracked.err
    assert [r["stateReason"] for r in read_csv(run.folder / "rejected.csv")] == ["", ""]


def test_approvals_keep_refusals_apart_from_decisions(sim, env, cli, tmp_path):
    """The outcome column: the maker's 403s are refused, a request decided meanwhile is refused (400), the
    rest decided; an approvals.csv of the older layout gains the column."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(4)))
    own = cli("approve", run.folder, "--decision", "approved", "--message", "self", "--yes")
    assert own.code == 1
    assert "403 code 4000" in own.err and "outcome is not `decided`" in own.err
    path = run.folder / "approvals.csv"
    assert tuple(read_csv(path)[0]) == APPROVAL_COLUMNS
    assert {(r["outcome"], r["httpStatus"]) for r in read_csv(path)} == {("refused", "403")}

    # The older layout: the same rows without the outcome column.
    with path.open(newline="") as fh:
        old = [[cell for column, cell in zip(APPROVAL_COLUMNS, row, strict=True) if column != "outcome"]
               for row in csv.reader(fh)]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(old)

    # Another checker decides one request between approve's look-up and its decision.
    settings = resolve({}, {**os.environ, "BULKSTATUS_UI_TOKEN": simcfg.SANDBOX_CHECKER_TOKEN})
    todo = asyncio.run(plan(run.folder, settings))
    assert len(todo.pending) == 4
    decide_in_sim(sim, [todo.pending[0].request_id], "rejected")
    report = asyncio.run(decide(todo, settings, "approved", "checked"))
    assert (report.accepted, report.refused) == (3, 1)
    assert report.counts == {"approved": 3, "refused": 1} and report.refused_by_status == {400: 1}
    decided = read_csv(path)
    assert tuple(decided[0]) == APPROVAL_COLUMNS
    assert len(decided) == 8 and [r["outcome"] for r in decided[:4]] == ["refused"] * 4  # the old rows, kept
    late = [r for r in decided[4:] if r["outcome"] == "refused"]
    assert len(late) == 1 and late[0]["httpStatus"] == "400" and "not awaiting a decision" in late[0]["error"]
    assert late[0]["requestId"] == todo.pending[0].request_id and late[0]["state"] == ""
    assert sorted(r["state"] for r in decided[4:] if r["outcome"] == "decided") == ["approved"] * 3


def test_an_approvals_csv_of_unknown_columns_is_not_appended_to(sim, env, cli, tmp_path):
    """A file approve did not write: exit 2, saying to move it aside, and nothing decided."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(1)))
    (run.folder / "approvals.csv").write_text("a,b\n1,2\n")
    result = cli("approve", run.folder, "--decision", "approved", "--message", "m", "--yes",
                 "--ui-token-file", checker_token(tmp_path))
    assert result.code == 2 and "move it aside" in result.err
    assert sim.sim.state.approve_calls == 0


def _approve_process(folder: Path, token: Path, *extra: str, stdin: int | None = None,
                     text_in: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command as a separate process, with the test's environment (the simulator's)."""
    return subprocess.run([sys.executable, "-m", "bulkstatus", "approve", str(folder), "--decision", "approved",
                           "--message", "checked", "--ui-token-file", str(token), *extra],
                          input=text_in, stdin=stdin, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


@pytest.mark.timeout(120)
def test_a_piped_y_is_taken_only_with_yes(sim, env, cli, tmp_path):
    """`echo y | approve` without --yes: exit 2, one line saying to pass --yes, nothing decided; with
    --yes the same pipe decides."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(3)))
    token = checker_token(tmp_path)
    piped = _approve_process(run.folder, token, text_in="y\n")
    assert piped.returncode == 2, piped.stderr
    lines = piped.stderr.strip().splitlines()
    assert len(lines) == 1 and "piped `y` is not taken" in lines[0] and "pass --yes" in lines[0]
    assert sim.sim.state.approve_calls == 0 and not (run.folder / "approvals.csv").exists()

    with_yes = _approve_process(run.folder, token, "--yes", text_in="y\n")
    assert with_yes.returncode == 0, with_yes.stderr
    assert {r.state for r in sim.sim.state.accepted()} == {"approved"}
    assert [r["outcome"] for r in read_csv(run.folder / "approvals.csv")] == ["decided"] * 3


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_typed_y_on_a_terminal_decides_and_anything_else_cancels(sim, env, cli, tmp_path):
    """On a terminal (a pseudo-terminal here) the prompt is asked: `n` cancels (exit 2), `y` decides."""
    run = cli("run", write_csv(tmp_path / "in.csv", mobiles(2)))
    token = checker_token(tmp_path)
    for typed, code, state in (("n\n", 2, "AdminTask"), ("y\n", 0, "approved")):
        main, child = os.openpty()
        try:
            os.write(main, typed.encode())  # waits in the terminal's line buffer until the prompt reads it
            done = _approve_process(run.folder, token, stdin=child)
        finally:
            os.close(child)
            os.close(main)
        assert done.returncode == code, done.stderr
        assert "Approve 2 request(s) with message 'checked'? [y/N]" in done.stderr
        assert {r.state for r in sim.sim.state.accepted()} == {state}
