"""--limit and --max-failures: the pure parts as tables, the rest through the CLI against the simulator."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import read_csv, write_csv

from bulkstatus.cli.exitcodes import ExitStatus, run_exit_status
from bulkstatus.errors import ConfigError
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.brakes import FailureBrake, FailureLimit, parse_failure_limit


@pytest.mark.parametrize(("text", "count", "percent", "shown"), [
    ("5", 5, None, "5"), (" 0 ", 0, None, "0"), ("10%", None, 10.0, "10%"), ("2.5%", None, 2.5, "2.5%"),
    ("0%", None, 0.0, "0%"),
])
def test_failure_limit_forms(text, count, percent, shown):
    """A count or a percentage, shown as given."""
    assert parse_failure_limit(text) == FailureLimit(count, percent, shown)


@pytest.mark.parametrize("text", ["", "five", "-1", "1.5", "%", "x%", "100%", "-5%", "150%"])
def test_failure_limit_refused(text):
    """Anything else is one line that says what to write."""
    with pytest.raises(ConfigError, match="--max-failures"):
        parse_failure_limit(text)


@pytest.mark.parametrize(("limit", "refused", "decided", "exceeded"), [
    ("5", 5, 5, False), ("5", 6, 6, True), ("0", 1, 1, True), ("0", 0, 100, False),
    ("10%", 5, 19, False),  # 26% but fewer than 20 answered: not judged yet
    ("10%", 3, 20, True), ("10%", 2, 20, False), ("10%", 10, 100, False), ("10%", 11, 100, True),
    ("0%", 1, 20, True), ("0%", 0, 20, False),
])
def test_failure_limit_exceeded(limit, refused, decided, exceeded):
    """More than N refused rows, or more than P% of the rows answered once 20 are."""
    assert parse_failure_limit(limit).exceeded(refused, decided) is exceeded


def _result(outcome: Outcome, code: str = "", error: str = "", transient: bool = False) -> Result:
    return Result(Row(1, "mobile", "1", "Suspended", "r"), outcome, error_code=code, error=error,
                  transient=transient)


def test_brake_counts_refusals_only_and_names_the_most_common():
    """Transient failures and unprocessed rows are not refusals; the reason names the commonest error."""
    brake = FailureBrake(parse_failure_limit("2"))
    for result in (_result(Outcome.SUBMITTED), _result(Outcome.FAILED, "500", "x", transient=True),
                   _result(Outcome.UNPROCESSED), _result(Outcome.INVALID, error="bad"),
                   _result(Outcome.FAILED, "8013", "Invalid identifier"),
                   _result(Outcome.FAILED, "8015", "Customer not found")):
        assert brake.observe(result) is None
    reason = brake.observe(_result(Outcome.FAILED, "8015", "Customer not found"))
    assert reason is not None and brake.tripped
    assert "3 of 5 rows answered were refused" in reason
    assert "most common: 8015 Customer not found (2 rows)" in reason
    assert brake.observe(_result(Outcome.FAILED, "8015", "Customer not found")) is None  # said once


@pytest.mark.parametrize(("counts", "left", "status"), [
    ({"submitted": 20, "unprocessed": 80}, 80, ExitStatus.OK),
    ({"submitted": 20, "unprocessed": 81}, 80, ExitStatus.ROWS_FAILED),  # one more was left by something else
    ({"submitted": 19, "failed": 1, "unprocessed": 80}, 80, ExitStatus.ROWS_FAILED),
    ({"submitted": 20, "invalid": 1, "unprocessed": 80}, 80, ExitStatus.ROWS_FAILED),
    ({"submitted": 20, "unprocessed": 80}, 0, ExitStatus.ROWS_FAILED),
])
def test_exit_status_with_a_limit(counts, left, status):
    """Rows a limit left do not make the exit status 1; anything else that is not done does."""
    assert run_exit_status(Counter(counts), False, False, left) is status


def _customers(tmp_path, n, prefix="9190"):
    return write_csv(tmp_path / "in.csv", [("mobile", f"{prefix}{i:08d}", "Suspended", "fraud") for i in range(n)])


def test_limit_then_resume_sends_every_row_once(sim, env, cli, tmp_path):
    """--limit 20 sends 20 rows and leaves the rest; a resume takes no limit unless given its own."""
    path = _customers(tmp_path, 50)
    first = cli("run", path, "--limit", "20")
    assert first.code == 0, first.err
    assert "--limit 20 reached: 30 rows left unprocessed" in first.err
    assert f"continue with: bulkstatus resume {first.folder}" in first.err
    rows = read_csv(first.folder / "results.csv")
    assert Counter(r["outcome"] for r in rows) == {"submitted": 20, "unprocessed": 30}
    assert [r["row"] for r in rows if r["outcome"] == "submitted"] == [str(n) for n in range(1, 21)]
    assert "--limit 20 was reached" in rows[20]["error"]
    assert sim.sim.state.create_calls == 20
    second = cli("resume", first.folder, "--limit", "10")  # a limit of its own
    assert second.code == 0, second.err
    assert sim.sim.state.create_calls == 30
    third = cli("resume", first.folder)  # the run's --limit is not taken again
    assert third.code == 0, third.err
    rows = read_csv(first.folder / "results.csv")
    assert [r["outcome"] for r in rows] == ["submitted"] * 50
    sent = Counter(call.body["payload"]["IntouchAPITask-Payload"]["queryParams"]["identifierValue"]
                   for call in sim.sim.state.received())
    assert len(sent) == 50 and set(sent.values()) == {1}
    summary = json.loads((first.folder / "summary.json").read_text())
    assert [(s["requestsStarted"], s["limit"], s["leftByLimit"]) for s in summary["sessions"]] == [
        (20, 20, 30), (10, 10, 20), (20, None, 0)]
    assert summary["status"] == "finished" and summary["requestsStarted"] == 50


def test_max_failures_stops_a_run_of_unknown_customers(sim, env, cli, tmp_path):
    """Every customer unknown: exit 3 after a few requests, one line naming the error; resumable."""
    path = _customers(tmp_path, 300)
    sim.config.not_found = {f"9190{i:08d}" for i in range(300)}
    result = cli("run", path, "--max-failures", "5", "--concurrency", "4")
    assert result.code == ExitStatus.ABORTED, result.err
    lines = [line for line in result.err.splitlines() if "most common" in line]
    assert lines == ["  ABORTED: --max-failures 5: 6 of 6 rows answered were refused by the API; most common: "
                     "8015 Customer not found for the given identifiers (6 rows); fix the cause, then resume "
                     "the run"], result.err
    assert 6 <= sim.sim.state.create_calls <= 6 + 4  # the sixth refusal, and the rows in flight at that moment
    rows = read_csv(result.folder / "results.csv")
    counts = Counter(r["outcome"] for r in rows)
    assert counts["failed"] == sim.sim.state.create_calls and counts["unprocessed"] == 300 - counts["failed"]
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["status"] == "aborted" and "8015" in summary["abortReason"]
    # Resumable, with the brake inherited: the cause fixed, the rest goes through.
    sim.config.not_found = set()
    again = cli("resume", result.folder)
    assert again.code == ExitStatus.ROWS_FAILED, again.err  # the refused rows stay failed
    rows = read_csv(result.folder / "results.csv")
    assert Counter(r["outcome"] for r in rows) == {"failed": counts["failed"], "submitted": 300 - counts["failed"]}


def test_max_failures_ignores_invalid_rows(sim, env, cli, tmp_path):
    """Rows found invalid before sending are not refusals: --max-failures 0 lets them by."""
    path = write_csv(tmp_path / "in.csv", [("mobile", "", "Suspended", "r")] * 5
                     + [("mobile", f"91900000{i:04d}", "Suspended", "r") for i in range(5)])
    result = cli("run", path, "--max-failures", "0")
    assert result.code == ExitStatus.ROWS_FAILED, result.err
    assert Counter(r["outcome"] for r in read_csv(result.folder / "results.csv")) == {"invalid": 5, "submitted": 5}


@pytest.mark.parametrize(("args", "message"), [
    (("--limit", "0"), "--limit must be a whole number >= 1, not '0'"),
    (("--limit", "x"), "--limit must be a whole number >= 1, not 'x'"),
    (("--max-failures", "lots"), "--max-failures 'lots' is not a limit: use a number of rows (e.g. 5) or a "
                                 "percentage (e.g. 10%)"),
])
def test_bad_brake_settings_exit_2(sim, env, cli, tmp_path, args, message):
    """A bad --limit or --max-failures is one line, exit 2, nothing sent."""
    result = cli("run", _customers(tmp_path, 3), *args)
    assert result.code == ExitStatus.USAGE
    assert result.err.strip().splitlines()[-1] == f"bulkstatus: error: {message}"
    assert sim.sim.state.create_calls == 0


def test_max_failures_from_the_environment_and_the_config_file(sim, env, cli, tmp_path, monkeypatch):
    """BULKSTATUS_MAX_FAILURES and max-failures in bulkstatus.toml work like the flag; errors name where."""
    path = _customers(tmp_path, 40)
    sim.config.not_found = {f"9190{i:08d}" for i in range(40)}
    (tmp_path / "bulkstatus.toml").write_text('[default]\nmax-failures = 1\n')
    assert cli("run", path, "--concurrency", "1").code == ExitStatus.ABORTED
    assert sim.sim.state.create_calls == 2
    monkeypatch.setenv("BULKSTATUS_MAX_FAILURES", "many")
    result = cli("run", path, "--new-run")
    assert result.code == ExitStatus.USAGE
    assert "bulkstatus: error: BULKSTATUS_MAX_FAILURES 'many' is not a limit" in result.err
