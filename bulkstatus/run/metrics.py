"""What a run did second by second, for its report and for `bulkstatus status`: ``metrics.jsonl``.

One line per second in which something happened, appended as the run goes (and by each resume):

    {"t": 1764650000, "a": {"201": 48, "429": 2}, "l": {"46": 30, "47": 18}, "p": 1.5, "o": {"submitted": 48}}

``t`` the second (epoch); ``a`` create attempts by answer (HTTP status, or how the call went without
one: ``timeout``, ``network``...); ``l`` their answer latency as a histogram of log bins (``bin_of``:
8 bins per doubling, so a percentile read from it is within 5%); ``p`` seconds of 429 pause the server
asked for; ``o`` rows finished by outcome. A second holds a few hundred bytes: a million rows at 50 a
second make 20,000 lines, about 3 MB, and the report downsamples them.

``live.json`` is rewritten (atomically) every second: rows done and total, outcome counts, the pace of
the last 30 s, the last error. It says what the run was doing when it last wrote; whether the run is
still alive is the folder lock's to say (``run/locks.py``).

Neither file is needed to resume or to trust a run: a write that fails is said once in the log and
recording stops (the run's own files stop the run on a full disk themselves).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkstatus.jsonio import dumps, loads
from bulkstatus.logs import scrub

log = logging.getLogger(__name__)
METRICS = "metrics.jsonl"
LIVE = "live.json"
BINS_PER_DOUBLING = 8
PACE_WINDOW = 30  # seconds the current pace is measured over


def bin_of(seconds: float) -> int:
    """The histogram bin of a latency: 8 per doubling of milliseconds (bin 0 is 1 ms, 80 is 1 s)."""
    return math.floor(BINS_PER_DOUBLING * math.log2(max(seconds * 1000.0, 0.01)))


def bin_seconds(index: int) -> float:
    """The middle of a bin, in seconds (geometric)."""
    return float(2.0 ** ((index + 0.5) / BINS_PER_DOUBLING) / 1000.0)


def percentile(histogram: Counter[int], share: float) -> float | None:
    """The latency (s) below which ``share`` of the answers in ``histogram`` fall; None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    wanted = share * total
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= wanted:
            return bin_seconds(index)
    return bin_seconds(max(histogram))


@dataclass
class Second:
    attempts: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)
    pause: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self, at: int) -> dict[str, Any]:
        out: dict[str, Any] = {"t": at}
        if self.attempts:
            out["a"] = dict(self.attempts)
        if self.latency:
            out["l"] = {str(k): v for k, v in self.latency.items()}
        if self.pause:
            out["p"] = round(self.pause, 3)
        if self.outcomes:
            out["o"] = dict(self.outcomes)
        return out


class Metrics:
    """Collects a run's seconds and writes them; ``clock`` is wall-clock seconds (a test's own)."""

    def __init__(self, folder: Path, total: int, done: int, counts: Counter[str],
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.total = total  # rows in the input
        self.done = done  # rows with an outcome (an earlier session's included)
        self.counts = Counter(counts)
        self._clock = clock
        self._seconds: dict[int, Second] = {}
        self._recent: deque[tuple[int, int]] = deque()  # (second, rows finished in it), the pace window
        self.last_error = ""
        self._broken = False
        self.started = clock()

    def _second(self) -> Second:
        at = int(self._clock())
        second = self._seconds.get(at)
        if second is None:
            second = self._seconds[at] = Second()
        return second

    def attempt(self, answer: str, seconds: float | None) -> None:
        """A create attempt's answer (``"201"``, ``"429"``, ``"timeout"``...) and its latency."""
        second = self._second()
        second.attempts[answer] += 1
        if seconds is not None:
            second.latency[bin_of(seconds)] += 1

    def paused(self, seconds: float) -> None:
        self._second().pause += seconds

    def finished(self, outcome: str, error: str = "", count: int = 1) -> None:
        self._second().outcomes[outcome] += count
        self.done += count
        self.counts[outcome] += count
        if error and outcome in ("failed", "invalid"):
            self.last_error = error  # scrubbed when written: the server may quote our own headers

    def pace(self, now: float | None = None) -> float:
        """Rows finished a second over the last PACE_WINDOW seconds (0 before the first)."""
        now = self._clock() if now is None else now
        cutoff = int(now) - PACE_WINDOW
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()
        span = min(PACE_WINDOW, max(now - self.started, 1.0))
        return sum(n for _, n in self._recent) / span

    def flush(self, final: bool = False) -> None:
        """Append the seconds that are over (all of them when ``final``) and rewrite live.json."""
        now = self._clock()
        current = int(now)
        over = sorted(at for at in self._seconds if final or at < current)
        lines = []
        for at in over:
            second = self._seconds.pop(at)
            finished = sum(second.outcomes.values())
            if finished:
                self._recent.append((at, finished))
            lines.append(dumps(second.line(at)) + b"\n")
        if self._broken:
            return
        try:
            if lines:
                with (self.folder / METRICS).open("ab") as fh:
                    fh.write(b"".join(lines))
            self._write_live(now, final)
        except OSError as exc:
            self._broken = True
            log.warning("cannot write %s (%s): the report will lack the rest of this session's pace",
                        self.folder / METRICS, exc.strerror or exc)

    def _write_live(self, now: float, final: bool) -> None:
        pace = self.pace(now)
        left = max(self.total - self.done, 0)
        live = {
            "pid": os.getpid(),
            "updatedAt": now,
            "rowsDone": self.done,
            "rowsTotal": self.total,
            "counts": dict(self.counts),
            "pace": round(pace, 3),
            "etaSeconds": None if final or pace <= 0 else round(left / pace, 1),
            "lastError": scrub(self.last_error),
            "final": final,
        }
        tmp = self.folder / (LIVE + ".tmp")
        tmp.write_bytes(dumps(live))
        os.replace(tmp, self.folder / LIVE)


def read_seconds(folder: Path) -> Iterator[dict[str, Any]]:
    """The lines of metrics.jsonl, a torn last one (kill -9 mid-write) left out."""
    with contextlib.suppress(FileNotFoundError), (folder / METRICS).open("rb") as fh:
        for raw in fh:
            with contextlib.suppress(ValueError):
                item = loads(raw)
                if isinstance(item, dict) and isinstance(item.get("t"), int):
                    yield item


def read_live(folder: Path) -> dict[str, Any] | None:
    try:
        item = loads((folder / LIVE).read_bytes())
    except (OSError, ValueError):
        return None
    return item if isinstance(item, dict) else None


def merge_histograms(items: Iterable[dict[str, int]]) -> Counter[int]:
    total: Counter[int] = Counter()
    for item in items:
        for key, count in item.items():
            total[int(key)] += count
    return total
