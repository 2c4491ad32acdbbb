"""What report.html shows, read from a run folder's own files (no API call): summary.json for the
totals, settings and sessions; results.csv for the errors by kind and the approval states; metrics.jsonl
for the pace and latency over time, downsampled to at most ``MAX_POINTS`` points."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkstatus.run.folder import SUMMARY, read_json
from bulkstatus.run.journal import RESULTS
from bulkstatus.run.metrics import merge_histograms, percentile, read_seconds
from bulkstatus.settings import parse_rate

MAX_POINTS = 400  # per series: a million-row run's report stays small
EXAMPLES = 3  # rows shown per kind of error
MAX_KINDS = 25  # kinds of error listed (the rest counted together)
KEPT_KINDS = 500  # kinds counted before ranking; past that a row's kind is counted as "other"
GAP = 60  # seconds without activity (a resume the next morning) shown as a break, not as time
BAD = ("failed", "invalid")
THROTTLED = "429"
_QUOTED = re.compile(r'"[^"]*"')


@dataclass
class ErrorKind:
    outcome: str
    status: str
    code: str
    message: str
    count: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (row, identifierName, identifierValue)


@dataclass
class Series:
    """Per point: its start (seconds of activity since the run began) and what happened in it."""

    x: list[float] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)  # create attempts a second
    answered_ok: list[float] = field(default_factory=list)  # 2xx a second
    throttled: list[float] = field(default_factory=list)  # 429s a second
    other: list[float] = field(default_factory=list)  # other errors and no answers, a second
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)
    p99: list[float | None] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)  # (x, seconds asked for)
    breaks: list[float] = field(default_factory=list)  # x of each gap left out (a new session)
    step: float = 1.0  # seconds per point
    answers: Counter[str] = field(default_factory=Counter)  # every attempt by answer
    latency: Counter[int] = field(default_factory=Counter)  # the whole run's histogram

    def overall(self, share: float) -> float | None:
        return percentile(self.latency, share)


@dataclass
class ReportData:
    folder: Path
    summary: dict[str, Any]
    errors: list[ErrorKind]
    other_errors: int  # rows with an error of a kind past MAX_KINDS
    states: Counter[str]  # state column of results.csv, rows with a requestId
    series: Series
    rate_per_second: float | None


def load(folder: Path) -> ReportData:
    summary = read_json(folder / SUMMARY) if (folder / SUMMARY).exists() else {}
    if not isinstance(summary, dict):
        summary = {}
    errors, other, states = _read_results(folder / RESULTS)
    rate_text = summary.get("configuredRate") or (summary.get("settings") or {}).get("rate")
    rate = None
    if rate_text:
        try:
            parsed = parse_rate(str(rate_text))
            rate = None if parsed.unlimited else parsed.per_second
        except ValueError:
            rate = None
    return ReportData(folder, summary, errors, other, states, series(folder), rate)


def _read_results(path: Path) -> tuple[list[ErrorKind], int, Counter[str]]:
    kinds: dict[tuple[str, str, str, str], ErrorKind] = {}
    states: Counter[str] = Counter()
    other = 0
    if not path.exists():
        return [], 0, states
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            outcome = row.get("outcome") or ""
            if row.get("requestId"):
                states[row.get("state") or "unknown"] += 1
            if outcome not in BAD:
                continue
            # Messages that quote the row's own value ("91-80-501" is not a mobile number) are one kind.
            message = _QUOTED.sub('"…"', row.get("error") or "")
            key = (outcome, row.get("httpStatus") or "", row.get("errorCode") or "", message)
            kind = kinds.get(key)
            if kind is None:
                if len(kinds) >= KEPT_KINDS:  # a message of its own per row: memory must not grow with the run
                    other += 1
                    continue
                kind = kinds[key] = ErrorKind(*key)
            kind.count += 1
            if len(kind.examples) < EXAMPLES:
                kind.examples.append((row.get("row") or "", row.get("identifierName") or "",
                                      row.get("identifierValue") or ""))
    ranked = sorted(kinds.values(), key=lambda k: (-k.count, k.message))
    other += sum(k.count for k in ranked[MAX_KINDS:])
    return ranked[:MAX_KINDS], other, states


def series(folder: Path, max_points: int = MAX_POINTS) -> Series:
    """metrics.jsonl as series of at most ``max_points`` points, gaps over GAP seconds left out."""
    seconds = sorted(read_seconds(folder), key=lambda item: item["t"])
    out = Series()
    if not seconds:
        return out
    # Seconds of activity: each line's x, with long gaps (another session) cut out.
    xs: list[float] = []
    x = 0.0
    previous = seconds[0]["t"]
    for item in seconds:
        gap = item["t"] - previous
        if gap > GAP:
            out.breaks.append(x + 1)
            gap = 1
        x += gap
        xs.append(x)
        previous = item["t"]
    span = xs[-1] + 1
    step = out.step = max(1.0, float(math.ceil(span / max_points)))
    points = math.ceil(span / step)
    attempts = [0.0] * points
    ok = [0.0] * points
    throttled = [0.0] * points
    other = [0.0] * points
    histograms: list[Counter[int]] = [Counter() for _ in range(points)]
    for at, item in zip(xs, seconds, strict=True):
        i = min(int(at // step), points - 1)
        for answer, count in (item.get("a") or {}).items():
            out.answers[answer] += count
            attempts[i] += count
            if answer.startswith("2"):
                ok[i] += count
            elif answer == THROTTLED:
                throttled[i] += count
            else:
                other[i] += count
        latency = merge_histograms([item.get("l") or {}])
        histograms[i].update(latency)
        out.latency.update(latency)
        if item.get("p"):
            out.pauses.append((at, float(item["p"])))
    out.x = [i * step for i in range(points)]
    out.attempts = [v / step for v in attempts]
    out.answered_ok = [v / step for v in ok]
    out.throttled = [v / step for v in throttled]
    out.other = [v / step for v in other]
    out.p50 = [percentile(h, 0.50) for h in histograms]
    out.p95 = [percentile(h, 0.95) for h in histograms]
    out.p99 = [percentile(h, 0.99) for h in histograms]
    return out


__all__ = ["ErrorKind", "ReportData", "Series", "load", "series"]
