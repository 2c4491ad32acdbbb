"""`bulkstatus status`: from another shell, no API call: active or not (the folder lock says), rows done
of total, outcomes, pace, ETA, last error; and the progress a run shows (only finished rows count)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import write_csv

from bulkstatus.cli.progress import Progress, eta_text
from bulkstatus.model import Outcome, Result, Row
from bulkstatus.run.folder import Manifest
from bulkstatus.run.locks import lock_folder
from bulkstatus.run.metrics import LIVE


def _finished_run(cli, tmp_path: Path):  # type: ignore[no-untyped-def]
    rows = [("mobile", "919800000001", "Suspended", "a"), ("mobile", "919999999999", "Suspended", "unknown")]
    result = cli("run", write_csv(tmp_path / "two.csv", rows))
    assert result.code == 1, result.err
    return result.folder


def test_status_of_a_finished_run(cli, env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _finished_run(cli, tmp_path)
    text = cli("status", folder)
    assert text.code == 0
    assert "active: no; status finished" in text.out
    assert "rows: 2 done of 2 (100.0%)" in text.out
    assert "outcomes: failed 1, submitted 1" in text.out
    assert "last error: Customer not found for the given identifiers" in text.out
    info = json.loads(cli("status", folder, "--json").out)
    assert info["active"] is False and info["pid"] is None and info["counts"] == {"submitted": 1, "failed": 1}


def test_status_of_an_active_run_names_its_pid(cli, env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A process holding the folder's lock is what "active" means (a live.json alone proves nothing)."""
    folder = _finished_run(cli, tmp_path)
    manifest = Manifest.load(folder)
    manifest.status = "running"
    manifest.save()
    live = {"pid": os.getpid(), "updatedAt": time.time(), "rowsDone": 250, "rowsTotal": 1000,
            "counts": {"submitted": 240, "failed": 10}, "pace": 12.5, "etaSeconds": 60.0,
            "lastError": "HTTP 500", "final": False}
    (folder / LIVE).write_text(json.dumps(live))
    lock = lock_folder(folder)
    try:
        text = cli("status", folder).out
    finally:
        lock.release()
    assert f"active: yes (pid {os.getpid()})" in text
    assert "rows: 250 done of 1,000 (25.0%)" in text
    assert "pace: 12.5 rows/s over the last 30 s, ETA 1 min 00 s" in text
    # The same folder once its process is gone without a word (kill -9): not active, resume continues.
    after = cli("status", folder).out
    assert "active: no; status died" in after and f"bulkstatus resume {folder}" in after


def test_status_of_a_folder_that_is_not_a_run(cli, env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("status", tmp_path)
    assert result.code == 2 and "is not a bulkstatus run folder" in result.err


def _result(number: int, outcome: Outcome) -> Result:
    return Result(Row(number, "mobile", "91980000000", "Suspended", "r"), outcome)


def test_progress_counts_finished_rows_only() -> None:
    now = [0.0]
    progress = Progress(10, quiet=True, clock=lambda: now[0])
    for number, outcome in enumerate([Outcome.SUBMITTED, Outcome.FAILED, Outcome.INVALID, Outcome.UNPROCESSED,
                                      Outcome.UNPROCESSED], start=1):
        progress(_result(number, outcome))
    now[0] = 2.0
    assert progress.done == 3 and progress.failed == 2
    assert progress.pace() == pytest.approx(1.5)
    assert progress.eta() == pytest.approx(7 / 1.5)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "?"), (float("inf"), "?"), (0, "0 s"), (35.4, "35 s"), (250, "4 min 10 s"), (3900, "1 h 05 min"),
])
def test_eta_text(seconds: float | None, text: str) -> None:
    assert eta_text(seconds) == text


def test_a_log_line_every_ten_seconds_without_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress(100, quiet=False, clock=lambda: now[0])  # tests have no terminal: log lines
    with caplog.at_level("INFO", logger="bulkstatus.progress"):
        for number in range(1, 21):
            now[0] = number * 1.0
            progress(_result(number, Outcome.SUBMITTED))
    lines = [r.getMessage() for r in caplog.records if r.name == "bulkstatus.progress"]
    assert lines == ["progress: 10/100 rows done, 1.0 rows/s, 0 failed or invalid so far, ETA 1 min 30 s",
                     "progress: 20/100 rows done, 1.0 rows/s, 0 failed or invalid so far, ETA 1 min 20 s"]


def test_lines_through_the_bar_keep_the_terminals_level(capsys: pytest.CaptureFixture[str]) -> None:
    """Under the bar, log lines go through tqdm.write; DEBUG still only with --verbose (tqdm's own
    redirect dropped the handler's level, so DEBUG lines reached the terminal)."""
    import logging

    from bulkstatus.cli.progress import _through_tqdm

    logger = logging.getLogger("bulkstatus.test-bar")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with _through_tqdm(logger):
            assert handler not in logger.handlers
            logger.debug("a debug line")
            logger.info("an info line")
        assert handler in logger.handlers
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "an info line" in err and "a debug line" not in err
