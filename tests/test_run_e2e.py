"""End to end through the CLI against the simulator over real HTTP on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, read_csv, write_csv

from bulkstatus.api.bodies import basic_authorization
from bulkstatus.sim import config as simcfg

SEED_BODY = {  # the seed page's example, with PUT as capillary-api.md decides, and the sandbox's values
    "entityInfo": {
        "tillId": simcfg.SANDBOX_TILL_ID,
        "storeId": simcfg.SANDBOX_STORE_ID,
        "zoneId": simcfg.SANDBOX_ZONE_ID,
        "conceptId": simcfg.SANDBOX_CONCEPT_ID,
    },
    "payload": {
        "IntouchAPITask-Payload": {
            "hostname": simcfg.SANDBOX_INTOUCH_HOST,
            "path": "/v2/customers/lookup/status",
            "method": "PUT",
            "pathParams": {},
            "queryParams": {
                "source": "INSTORE",
                "accountId": "",
                "use_async": "false",
                "identifierName": "mobile",
                "identifierValue": "919780375690",
            },
            "body": {"reason": "testing", "label": "Suspended"},
            "headers": {
                "Authorization": basic_authorization(simcfg.SANDBOX_INTOUCH_USER, simcfg.SANDBOX_INTOUCH_PASSWORD),
                "content-type": "application/json",
            },
        }
    },
}


def test_messy_file_gives_each_row_its_outcome(sim, env, cli, tmp_path):
    """Valid, invalid, duplicate and not-found rows each get the right outcome; ids match the simulator."""
    result = cli("run", ROOT / "samples" / "messy.csv")
    assert result.code == 1, result.err
    rows = read_csv(result.folder / "results.csv")
    outcomes = [r["outcome"] for r in rows]
    assert outcomes == [
        "submitted", "submitted", "submitted", "invalid", "invalid", "invalid", "invalid", "invalid",
        "duplicate", "duplicate", "failed", "failed", "submitted", "submitted",
    ]
    assert [r["row"] for r in rows] == [str(n) for n in range(1, 15)]
    assert rows[1]["identifierValue"] == "007" and rows[13]["reason"] == "null"
    assert rows[2]["identifierValue"] == "NA@example.com"
    assert "row 1" in rows[8]["error"] and "row 1" in rows[9]["error"]
    assert rows[10]["errorCode"] == "8015" and rows[10]["httpStatus"] == "400"
    accepted = {r.request_id: r for r in sim.sim.state.accepted()}
    submitted = [r for r in rows if r["outcome"] == "submitted"]
    assert {r["requestId"] for r in submitted} == set(accepted)
    for r in submitted:
        stored = accepted[r["requestId"]]
        assert (stored.identifier_value, stored.label) == (r["identifierValue"], r["label"])
        assert r["state"] == "AdminTask" and r["attempts"] == "1"
    failed = read_csv(result.folder / "fix.csv")
    assert [f["row"] for f in failed] == ["4", "5", "6", "7", "8", "11", "12"]
    assert read_csv(result.folder / "retry.csv") == []
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["counts"]["submitted"] == 5 and summary["counts"]["invalid"] == 5
    assert summary["counts"]["duplicate"] == 2 and summary["counts"]["failed"] == 2
    assert summary["input"]["sha256"] and "api-password" not in summary["settings"]
    # The rows to fix run again as they are (unfixed), and find the same customers.
    again = cli("run", result.folder / "fix.csv")
    assert again.code == 1, again.err
    rerun = read_csv(again.folder / "results.csv")
    assert [(r["identifierName"], r["identifierValue"], r["outcome"]) for r in rerun] == [
        (f["identifierName"], f["identifierValue"], "invalid" if f["outcome"] == "invalid" else "failed")
        for f in failed
    ]
    assert len(sim.sim.state.accepted()) == 5


def test_body_and_headers_are_exactly_the_documented_ones(sim, env, cli, tmp_path):
    """The simulator received the seed's body and the documented headers, field by field."""
    path = write_csv(tmp_path / "one.csv", [("mobile", "919780375690", "Suspended", "testing")])
    result = cli("run", path)
    assert result.code == 0, result.err
    [body] = sim.sim.state.received_bodies()
    assert body == SEED_BODY
    [headers] = sim.sim.state.received_headers()
    assert headers["X-CAP-API-AUTH-ORG-ID"] == simcfg.SANDBOX_ORG_ID
    assert headers["X-CAP-UI-AUTH-TOKEN"] == simcfg.SANDBOX_MAKER_TOKEN
    assert headers["Authorization"] == basic_authorization(simcfg.SANDBOX_API_USER, simcfg.SANDBOX_API_PASSWORD)
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert result.out.strip().splitlines()[-1] == str(result.folder)
    assert len(result.out.strip().splitlines()) == 1  # everything else goes to stderr


def test_sandbox_quick_start_exits_zero(cli, tmp_path, monkeypatch):
    """`bulkstatus run --sandbox samples/customers.csv` needs no credentials and submits every row."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BULKSTATUS_LOCK_DIR", str(tmp_path / "locks"))  # not another test's (or user's) run
    result = cli("run", "--sandbox", "--rate", "0", ROOT / "samples" / "customers.csv")
    assert result.code == 0, result.err
    rows = read_csv(result.folder / "results.csv")
    assert len(rows) == 60 and {r["outcome"] for r in rows} == {"submitted"}
    assert result.folder.parent == Path("output")


def test_dry_run_sends_nothing_and_masks_secrets(sim, env, cli, tmp_path):
    """--dry-run writes the bodies it would send, with *** for the inner Authorization."""
    path = write_csv(tmp_path / "d.csv", [("email", "a@b.co", "Suspended", "x"), ("email", "bad", "S", "x")])
    result = cli("run", "--dry-run", path)
    assert result.code == 1, result.err
    assert sim.sim.state.stats()["create_calls"] == 0
    assert [r["outcome"] for r in read_csv(result.folder / "results.csv")] == ["dry-run", "invalid"]
    [line] = (result.folder / "requests.jsonl").read_text().splitlines()
    body = json.loads(line)["body"]
    assert body["payload"]["IntouchAPITask-Payload"]["headers"]["Authorization"] == "***"


def test_secrets_never_reach_output_files_or_logs(sim, env, cli, tmp_path):
    """No configured secret, nor a header built from one, appears in any file of the run or on stderr."""
    path = write_csv(tmp_path / "s.csv", [("mobile", "919780375690", "Suspended", "x"),
                                          ("mobile", "919999999999", "Suspended", "x")])
    result = cli("run", "--verbose", path)
    secrets = [simcfg.SANDBOX_MAKER_TOKEN, simcfg.SANDBOX_API_PASSWORD, simcfg.SANDBOX_INTOUCH_PASSWORD,
               basic_authorization(simcfg.SANDBOX_API_USER, simcfg.SANDBOX_API_PASSWORD).split()[1],
               basic_authorization(simcfg.SANDBOX_INTOUCH_USER, simcfg.SANDBOX_INTOUCH_PASSWORD).split()[1]]
    texts = [result.out, result.err] + [p.read_text() for p in result.folder.iterdir()]
    for secret in secrets:
        assert not any(secret in text for text in texts), secret


def test_bad_settings_exit_2_with_one_line_and_send_nothing(sim, env, cli, tmp_path, monkeypatch):
    """Missing or contradictory settings and unreadable input stop before anything is sent."""
    good = write_csv(tmp_path / "g.csv", [("mobile", "919780375690", "Suspended", "x")])
    cases = [
        ({"BULKSTATUS_ORG_ID": ""}, ["run", good], "org-id is not set"),
        ({"BULKSTATUS_OAUTH_KEY": "k", "BULKSTATUS_OAUTH_SECRET": "s"}, ["run", good], "both Basic"),
        ({"BULKSTATUS_UI_TOKEN": ""}, ["run", good], "UI token is not set"),
        ({}, ["run", "--rate", "fast", good], "--rate 'fast' is not a pace"),
        ({}, ["run", "--concurrency", "-1", good], "--concurrency must be"),
        ({}, ["run", tmp_path / "missing.csv"], "does not exist"),
        ({}, ["run", "--ui-token-file", tmp_path / "nofile", good], "--ui-token-file: no such file"),
        ({}, ["run", "--ui-token-file=hunter2-typed-here", good], "its name is not shown"),
        ({}, ["run", "--config", tmp_path / "none.toml", good], "does not exist"),
    ]
    for changes, args, message in cases:
        with monkeypatch.context() as m:
            for name, value in changes.items():
                m.setenv(name, value)
            result = cli(*args)
        assert result.code == 2, (args, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (message, result.err)
        assert "hunter2" not in result.err
    assert sim.sim.state.stats()["create_calls"] == 0


def test_config_file_profiles_and_precedence(sim, env, cli, tmp_path, monkeypatch):
    """flag > environment > profile > [default]; a secret in the config file is refused."""
    path = write_csv(tmp_path / "p.csv", [("mobile", "919780375690", "", "x")])
    (tmp_path / "bulkstatus.toml").write_text(
        '[default]\nlabel = "FromDefault"\nsource = "DEFAULTSRC"\n'
        '[profiles.night]\nlabel = "FromProfile"\nsource = "PROFILESRC"\n'
    )
    monkeypatch.setenv("BULKSTATUS_SOURCE", "ENVSRC")
    assert cli("run", path).code == 0
    assert cli("run", "--no-pending-check", "--profile", "night", path).code == 0
    assert cli("run", "--no-pending-check", "--profile", "night", "--source", "FLAGSRC", path).code == 0
    bodies = sim.sim.state.received_bodies()
    got = [(b["payload"]["IntouchAPITask-Payload"]["body"]["label"],
            b["payload"]["IntouchAPITask-Payload"]["queryParams"]["source"]) for b in bodies]
    assert got == [("FromDefault", "ENVSRC"), ("FromProfile", "ENVSRC"), ("FromProfile", "FLAGSRC")]
    (tmp_path / "bulkstatus.toml").write_text('[default]\napi-password = "x"\n')
    bad = cli("run", "--new-run", path)
    assert bad.code == 2 and "must not be written in the config file" in bad.err


def test_sandbox_command_serves_until_stopped(tmp_path, cli, monkeypatch):
    """`bulkstatus sandbox` prints its URL on stdout, serves a run from another process, stops on Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys

    from bulkstatus.cli.sandbox import sandbox_environment

    proc = subprocess.Popen([sys.executable, "-m", "bulkstatus", "sandbox"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        for name in list(os.environ):
            if name.startswith("BULKSTATUS_"):
                monkeypatch.delenv(name)
        for name, value in sandbox_environment(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        result = cli("run", "--rate", "0", ROOT / "samples" / "customers.csv")
        assert result.code == 0, result.err
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "export BULKSTATUS_BASE_URL=" in err and "Traceback" not in err


def test_dry_run_and_quiet_come_from_environment_and_config(sim, env, cli, tmp_path, monkeypatch):
    """--dry-run, --quiet and --sandbox are settings too: BULKSTATUS_DRY_RUN, `quiet = true` in the file."""
    path = write_csv(tmp_path / "e.csv", [("mobile", "919780375690", "Suspended", "x")])
    (tmp_path / "bulkstatus.toml").write_text("[default]\nquiet = true\n")
    monkeypatch.setenv("BULKSTATUS_DRY_RUN", "true")
    result = cli("run", path)
    assert result.code == 0, result.err
    assert [r["outcome"] for r in read_csv(result.folder / "results.csv")] == ["dry-run"]
    assert sim.sim.state.stats()["create_calls"] == 0
    assert "INFO" not in result.err  # quiet: warnings and the summary only


def test_any_answer_body_is_recorded_without_crashing(sim, env, cli, tmp_path):
    """JSON, HTML and empty error bodies: each row records the status and a one-line error, no markup."""
    sim.config.error_rate = 1.0
    sim.sim.apply_config({"seed": 3})
    rows = [("mobile", f"9198000{n:05d}", "Suspended", "x") for n in range(40)]
    result = cli("run", "--max-retries", "0", "--abort-after", "600", write_csv(tmp_path / "bodies.csv", rows))
    assert result.code == 1, result.err
    results = read_csv(result.folder / "results.csv")
    assert {r["outcome"] for r in results} == {"failed"}
    assert {r["httpStatus"] for r in results} <= {"461", "500", "502", "503", "504", "521"}
    assert all(r["error"] and "<" not in r["error"] and "\n" not in r["error"] for r in results)
    assert any(r["errorCode"] == "4001" for r in results)  # the v2 JSON shape gives its code
    assert any(r["error"].endswith("with no body") for r in results)  # and an empty body says so
