"""report.html: written by run, resume and track (unless --no-report) and by `bulkstatus report`; one
file that needs nothing from the network; what the server or the input said is escaped; a long run's
series is downsampled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import sandbox_secrets, write_csv

from bulkstatus.report.data import MAX_POINTS, series
from bulkstatus.report.page import REPORT, write_report
from bulkstatus.run.metrics import METRICS, bin_of

SCRIPT = "<script>alert(1)</script>"


def _run_with_report(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BULKSTATUS_REPORT", "true")
    rows = [("mobile", f"91980000{i:04d}", "Suspended", "fraud list") for i in range(30)]
    rows += [("mobile", "919999999999", "Suspended", "not found in the sandbox"),
             ("mobile", SCRIPT, "Suspended", "an id no one should run")]
    return cli("run", write_csv(tmp_path / "list.csv", rows))


def test_a_run_writes_a_self_contained_report(cli, env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    result = _run_with_report(cli, tmp_path, monkeypatch)
    assert result.code == 1, result.err
    path = result.folder / REPORT
    assert f"report:      {path}" in result.err
    html = path.read_text(encoding="utf-8")
    # Offline: no script, no stylesheet or image fetched from anywhere.
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html
    # What the input (and the server quoting it) said is text, not markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The figures: counts, errors by kind with an example row, the input's hash, the charts.
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["input"]["sha256"] in html
    assert ">30<" in html and "submitted" in html
    assert "Customer not found for the given identifiers" in html and "31: mobile 919999999999" in html
    assert html.count("<svg") >= 3  # outcomes, pace, latency (and states)
    for secret in sandbox_secrets():
        assert secret not in html


def test_no_report_and_the_report_command(cli, env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    rows = [("mobile", "919800000001", "Suspended", "one")]
    result = cli("run", write_csv(tmp_path / "one.csv", rows), "--no-report")
    assert result.code == 0, result.err
    assert not (result.folder / REPORT).exists() and "report:" not in result.err
    again = cli("report", result.folder)
    assert again.code == 0 and Path(again.out.strip()) == result.folder / REPORT
    assert "<svg" in (result.folder / REPORT).read_text(encoding="utf-8")
    missing = cli("report", tmp_path)
    assert missing.code == 2 and "is not a bulkstatus run folder" in missing.err


def test_track_writes_the_report_with_the_states(cli, env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    rows = [("mobile", f"91980000{i:04d}", "Suspended", "fraud list") for i in range(3)]
    result = cli("run", write_csv(tmp_path / "three.csv", rows))
    assert result.code == 0, result.err
    monkeypatch.setenv("BULKSTATUS_REPORT", "true")
    tracked = cli("track", result.folder)
    assert "report:" in tracked.err, tracked.err
    html = (result.folder / REPORT).read_text(encoding="utf-8")
    assert "requests by state" in html and "Not tracked yet" not in html


def _seconds_file(folder: Path, seconds: int, gap_at: int | None = None) -> None:
    lines = []
    t = 1_800_000_000
    for i in range(seconds):
        t += 1 if i != gap_at else 36_000  # a resume ten hours later
        item = {"t": t, "a": {"201": 48, "429": 2}, "l": {str(bin_of(0.05)): 45, str(bin_of(0.4)): 5},
                "o": {"submitted": 48}}
        if i % 1000 == 0:
            item["p"] = 2.0
        lines.append(json.dumps(item))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METRICS).write_text("\n".join(lines) + "\n")


def test_a_long_run_is_downsampled_and_gaps_are_cut(tmp_path: Path) -> None:
    """A million rows at 50 a second: 20,000 seconds become at most MAX_POINTS points; a ten-hour gap
    between two sessions is one break, not ten hours of empty chart; the page stays small."""
    _seconds_file(tmp_path, 20_000, gap_at=12_000)
    got = series(tmp_path)
    assert len(got.x) <= MAX_POINTS and got.step == 50
    assert len(got.breaks) == 1
    assert sum(got.answers.values()) == 20_000 * 50
    assert got.attempts[10] == pytest.approx(50.0) and got.throttled[10] == pytest.approx(2.0)
    assert got.overall(0.5) == pytest.approx(0.05, rel=0.05)
    assert got.overall(0.95) == pytest.approx(0.4, rel=0.05)
    assert len(got.pauses) == 20
    path = write_report(tmp_path)
    assert path.stat().st_size < 400_000


def test_errors_that_quote_their_row_are_one_kind(tmp_path: Path) -> None:
    from bulkstatus.report.data import _read_results

    results = tmp_path / "results.csv"
    results.write_text(
        "row,identifierName,identifierValue,outcome,httpStatus,errorCode,error\n"
        'r1,mobile,91-1,invalid,,,"identifierValue ""91-1"" is not a mobile number; write it as ""911"""\n'
        'r2,mobile,91-2,invalid,,,"identifierValue ""91-2"" is not a mobile number; write it as ""912"""\n'
        "r3,mobile,9199,failed,400,8015,Customer not found for the given identifiers\n"
        "r4,mobile,9198,submitted,200,,\n")
    kinds, other, _ = _read_results(results)
    assert [(k.outcome, k.count, k.message) for k in kinds] == [
        ("invalid", 2, 'identifierValue "…" is not a mobile number; write it as "…"'),
        ("failed", 1, "Customer not found for the given identifiers")]
    assert kinds[0].examples == [("r1", "mobile", "91-1"), ("r2", "mobile", "91-2")] and other == 0
