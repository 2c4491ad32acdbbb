"""Rows that did not go through, across generations: retry.csv (as it is) and fix.csv (change it first)
fed back in keep the original row numbers (sourceRow), and a resume after kill -9 leaves both files as an
uninterrupted run writes them."""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest
from conftest import read_csv, write_csv
from test_resilience import _child_env, _spawn, _wait_accepted, accepted_counts, make_rows

BAD_MOBILE = "98-00-1"  # invalid: dashes
GHOST = "919999999999"  # the sandbox answers 8015 customer not found
FLAKY = "917000000007"  # always answered 503 / 4001 (SimConfig.always_error): its retries run out


def sent_count(sim, value: str) -> int:  # type: ignore[no-untyped-def]
    return sum(body["payload"]["IntouchAPITask-Payload"]["queryParams"]["identifierValue"] == value
               for body in sim.sim.state.received_bodies())


def lineage(path: Path) -> list[tuple[str, str]]:
    """(row, sourceRow) of every line of a results, retry or fix file."""
    return [(r["row"], r["sourceRow"]) for r in read_csv(path)]


def test_retry_and_fix_files_keep_the_original_rows_over_generations(sim, env, tmp_path, cli):  # type: ignore[no-untyped-def]
    """A run with an invalid row, a customer not found, a row whose retries run out and a stop (SIGTERM):
    the first two in fix.csv with what to fix, the others in retry.csv; each file fed back in, twice, says
    for every row which row of the original file it is, and no customer is sent twice."""
    rows = make_rows(400, seed=12)
    rows[2] = ("mobile", BAD_MOBILE, "Suspended", "row 3")
    rows[4] = ("mobile", GHOST, "Suspended", "row 5")
    rows[6] = ("mobile", FLAKY, "Suspended", "row 7")
    path = write_csv(tmp_path / "night.csv", rows)
    sim.config.always_error = {FLAKY}
    proc = _spawn(["run", "--rate", "200/s", "--concurrency", "4", "--max-retries", "2", str(path)],
                  _child_env(env, tmp_path))
    _wait_accepted(sim, 40)
    deadline = time.monotonic() + 20
    while sent_count(sim, FLAKY) < 3:  # its three attempts are in: the row is decided before the stop
        assert time.monotonic() < deadline, "the flaky row was not tried three times"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    first = Path(out.strip().splitlines()[-1])

    results = read_csv(first / "results.csv")
    assert len(results) == 400 and all(r["sourceRow"] == r["row"] for r in results)
    fix = read_csv(first / "fix.csv")
    assert [(f["row"], f["sourceRow"], f["outcome"]) for f in fix] == [("3", "3", "invalid"), ("5", "5", "failed")]
    assert "is not a mobile number" in fix[0]["fix"] and "correct the number" in fix[0]["fix"]
    assert "code 8015" in fix[1]["fix"] and "no customer has this mobile" in fix[1]["fix"]
    retry = read_csv(first / "retry.csv")
    assert (retry[0]["row"], retry[0]["outcome"]) == ("7", "failed") and "retries ran out" in retry[0]["error"]
    assert len(retry) > 1 and {r["outcome"] for r in retry[1:]} == {"unprocessed"}
    submitted = {r["row"] for r in results if r["outcome"] == "submitted"}
    assert {r["row"] for r in retry[1:]} == {r["row"] for r in results if r["outcome"] == "unprocessed"}
    assert len(submitted) + len(retry) + len(fix) == 400  # every row in one place, none in doubt
    summary = json.loads((first / "summary.json").read_text())
    assert (summary["retryRows"], summary["fixRows"], summary["inDoubt"]) == (len(retry), 2, 0)
    assert f"bulkstatus run {first / 'fix.csv'}" in err and str(first / "retry.csv") in err

    # retry.csv, as it is, the next morning: the flaky customer fails again, the rest go through.
    second = cli("run", first / "retry.csv")
    assert second.code == 1, second.err
    assert lineage(second.folder / "results.csv") == [(str(i), r["sourceRow"]) for i, r in enumerate(retry, 1)]
    assert lineage(second.folder / "retry.csv") == [("1", "7")]
    assert f"bulkstatus run {second.folder / 'retry.csv'}" in second.err
    third = cli("run", second.folder / "retry.csv")  # a retry.csv of a retry.csv: still row 7
    assert third.code == 1, third.err
    assert lineage(third.folder / "results.csv") == lineage(third.folder / "retry.csv") == [("1", "7")]
    sim.config.always_error = set()
    fourth = cli("run", third.folder / "retry.csv")
    assert fourth.code == 0, fourth.err
    [done] = read_csv(fourth.folder / "results.csv")
    assert (done["sourceRow"], done["identifierValue"], done["outcome"]) == ("7", FLAKY, "submitted")
    assert read_csv(fourth.folder / "retry.csv") == [] == read_csv(fourth.folder / "fix.csv")

    # fix.csv: the bad mobile corrected as its fix column says, the unknown customer left as it is.
    edited = tmp_path / "fixed.csv"
    with (first / "fix.csv").open(newline="", encoding="utf-8") as src, edited.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, reader.fieldnames or [])
        writer.writeheader()
        for line in reader:
            writer.writerow(line | ({"identifierValue": "919800000003"} if line["sourceRow"] == "3" else {}))
    fixed = cli("run", edited)
    assert fixed.code == 1, fixed.err
    assert [(r["sourceRow"], r["outcome"]) for r in read_csv(fixed.folder / "results.csv")] == [
        ("3", "submitted"), ("5", "failed")]
    assert lineage(fixed.folder / "fix.csv") == [("2", "5")]
    again = cli("run", fixed.folder / "fix.csv")
    assert again.code == 1, again.err
    assert lineage(again.folder / "fix.csv") == [("1", "5")]

    counts = accepted_counts(sim)
    assert max(counts.values()) == 1  # nobody twice
    expected = {r[1] for r in rows} - {BAD_MOBILE, GHOST} | {"919800000003"}
    assert {value for value, _ in counts} == expected


@pytest.mark.parametrize("kill_after", [30, 170])
def test_resume_after_kill_9_writes_the_files_of_an_uninterrupted_run(sim, env, tmp_path, cli, kill_after):  # type: ignore[no-untyped-def]
    """kill -9 part way through a run with rows of every kind: resume cuts results.csv, retry.csv and fix.csv
    back to their checkpoint and ends with exactly the bytes of retry.csv and fix.csv that a run never
    stopped writes, every row once."""
    rows = make_rows(300, seed=kill_after)
    for i in range(0, 300, 20):
        rows[i + 2] = ("mobile", f"98-{i}", "Suspended", f"invalid {i}")
        rows[i + 8] = ("mobile", f"91555{i:07d}", "Suspended", f"not found {i}")
        rows[i + 14] = ("mobile", f"91777{i:07d}", "Suspended", f"flaky {i}")
    path = write_csv(tmp_path / "kill.csv", rows)
    sim.config.not_found = {f"91555{i:07d}" for i in range(0, 300, 20)}
    sim.config.always_error = {f"91777{i:07d}" for i in range(0, 300, 20)}
    proc = _spawn(["run", "--rate", "400/s", "--max-retries", "2", "--quiet", str(path)], _child_env(env, tmp_path))
    try:
        _wait_accepted(sim, kill_after)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    [folder] = list((tmp_path / "out").iterdir())
    resumed = cli("resume", folder)
    assert resumed.code == 1, resumed.err
    assert max(accepted_counts(sim).values()) == 1

    results = read_csv(folder / "results.csv")
    assert [(r["row"], r["sourceRow"]) for r in results] == [(str(i), str(i)) for i in range(1, 301)]
    assert [r["sourceRow"] for r in read_csv(folder / "retry.csv")] == [str(i + 15) for i in range(0, 300, 20)]
    assert [r["sourceRow"] for r in read_csv(folder / "fix.csv")] == [
        str(i + n) for i in range(0, 300, 20) for n in (3, 9)]
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["retryRows"], summary["fixRows"]) == (15, 30)

    clean = cli("run", "--no-pending-check", "--max-retries", "2", "--out", tmp_path / "clean", path)
    assert clean.code == 1, clean.err
    for name in ("retry.csv", "fix.csv"):
        assert (folder / name).read_bytes() == (clean.folder / name).read_bytes(), name
