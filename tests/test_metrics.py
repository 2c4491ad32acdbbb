"""metrics.jsonl and live.json: the histogram bins and percentiles as tables, the writer on a fake clock."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bulkstatus.run.metrics import LIVE, METRICS, Metrics, bin_of, bin_seconds, percentile, read_seconds


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.001, 0), (0.002, 8), (0.004, 16), (1.0, 79), (1.001, 79), (0.0, -54), (60.0, 126),
])
def test_bin_of(seconds: float, expected: int) -> None:
    assert bin_of(seconds) == expected


@pytest.mark.parametrize("seconds", [0.0013, 0.05, 0.25, 0.9, 3.0, 29.0])
def test_a_bin_holds_its_latency_within_five_percent(seconds: float) -> None:
    assert abs(bin_seconds(bin_of(seconds)) - seconds) / seconds < 0.05


@pytest.mark.parametrize(("histogram", "share", "expected_ms"), [
    ({}, 0.5, None),
    ({80: 1}, 0.5, 1000 * bin_seconds(80)),
    ({40: 50, 80: 50}, 0.5, 1000 * bin_seconds(40)),
    ({40: 50, 80: 50}, 0.51, 1000 * bin_seconds(80)),
    ({40: 99, 120: 1}, 0.99, 1000 * bin_seconds(40)),
    ({40: 98, 120: 2}, 0.99, 1000 * bin_seconds(120)),
])
def test_percentile(histogram: dict[int, int], share: float, expected_ms: float | None) -> None:
    got = percentile(Counter(histogram), share)
    assert (got if got is None else got * 1000) == expected_ms


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_seconds_written_when_over_and_live_rewritten(tmp_path: Path) -> None:
    clock = Clock()
    metrics = Metrics(tmp_path, total=100, done=10, counts=Counter({"submitted": 10}), clock=clock)
    metrics.attempt("201", 0.05)
    metrics.attempt("429", 0.01)
    metrics.paused(1.5)
    metrics.finished("submitted")
    metrics.flush()  # the second is not over: nothing appended yet
    assert not (tmp_path / METRICS).exists()
    live = json.loads((tmp_path / LIVE).read_text())
    assert live["rowsDone"] == 11 and live["rowsTotal"] == 100 and live["counts"] == {"submitted": 11}
    clock.now += 1
    metrics.attempt("timeout", None)
    metrics.finished("failed", "HTTP 500")
    metrics.flush()
    lines = list(read_seconds(tmp_path))
    assert lines == [{"t": 1_000_000, "a": {"201": 1, "429": 1}, "l": {str(bin_of(0.05)): 1, str(bin_of(0.01)): 1},
                      "p": 1.5, "o": {"submitted": 1}}]
    clock.now += 0.5
    metrics.flush(final=True)
    lines = list(read_seconds(tmp_path))
    assert lines[1] == {"t": 1_000_001, "a": {"timeout": 1}, "o": {"failed": 1}}
    live = json.loads((tmp_path / LIVE).read_text())
    assert live["final"] and live["etaSeconds"] is None and live["lastError"] == "HTTP 500"
    assert live["rowsDone"] == 12


def test_pace_and_eta(tmp_path: Path) -> None:
    clock = Clock()
    metrics = Metrics(tmp_path, total=1000, done=0, counts=Counter(), clock=clock)
    for _ in range(40):  # 10 rows a second for 4 s
        for _ in range(10):
            metrics.finished("submitted")
        clock.now += 1
        metrics.flush()
        if clock.now - metrics.started >= 4:
            break
    live = json.loads((tmp_path / LIVE).read_text())
    assert live["pace"] == pytest.approx(10.0)
    assert live["etaSeconds"] == pytest.approx((1000 - 40) / 10.0)


def test_a_torn_last_line_is_left_out(tmp_path: Path) -> None:
    (tmp_path / METRICS).write_bytes(b'{"t":1,"a":{"201":1}}\n{"t":2,"a":{"2')
    assert [line["t"] for line in read_seconds(tmp_path)] == [1]


def test_a_write_that_fails_stops_recording_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "gone"
    clock = Clock()
    metrics = Metrics(folder, total=1, done=0, counts=Counter(), clock=clock)
    metrics.finished("submitted")
    clock.now += 1
    metrics.flush()  # the folder does not exist: one warning, no exception
    metrics.flush()
    assert [r.levelname for r in caplog.records].count("WARNING") == 1
