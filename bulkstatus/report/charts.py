"""The charts of report.html, drawn by matplotlib as SVG text to put inline (nothing fetched, no script).

matplotlib is imported here only, when a report is written: a run's start does not pay for it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bulkstatus.report.data import Series

COLOURS = {"ok": "#2f7d32", "throttled": "#e08a00", "other": "#c62828", "rate": "#555555",
           "p50": "#1565c0", "p95": "#7b1fa2", "p99": "#c62828", "bar": "#1565c0"}
OUTCOME_COLOURS = {"submitted": "#2f7d32", "failed": "#c62828", "invalid": "#ad1457", "duplicate": "#757575",
                   "unprocessed": "#e08a00", "dry-run": "#1565c0", "pending-exists": "#6d4c41"}


def _pyplot() -> Any:
    # A cron job's HOME may not be writable: matplotlib's cache then goes to a temporary folder.
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "bulkstatus-matplotlib"))
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "bulkstatus"})
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog or doctype


def _time_axis(ax: Any, series: Series) -> None:
    span = (series.x[-1] + series.step) if series.x else 1.0
    if span > 3600:
        ax.set_xlabel("hours of sending")
        ticks = ax.get_xticks()
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t / 3600:.1f}" for t in ticks])
    elif span > 180:
        ax.set_xlabel("minutes of sending")
        ticks = ax.get_xticks()
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t / 60:.0f}" for t in ticks])
    else:
        ax.set_xlabel("seconds of sending")
    ax.set_xlim(0, span)
    for x in series.breaks:
        ax.axvline(x, color="#999999", linestyle="--", linewidth=0.8)


def pace(series: Series, rate_per_second: float | None) -> str:
    """Create attempts a second, stacked by answer, against the configured rate; 429 pauses marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = series.x
    ax.stackplot(x, series.answered_ok, series.throttled, series.other, step="post",
                 colors=[COLOURS["ok"], COLOURS["throttled"], COLOURS["other"]],
                 labels=["answered 2xx", "answered 429 (throttled)", "other errors, no answer"], alpha=0.85)
    if rate_per_second:
        ax.axhline(rate_per_second, color=COLOURS["rate"], linestyle=":", linewidth=1.2,
                   label=f"configured rate ({rate_per_second:g}/s)")
    top = max([*series.attempts, rate_per_second or 0.0, 1.0]) * 1.15
    for i, (at, seconds) in enumerate(series.pauses):
        ax.axvspan(at, at + max(seconds, series.step * 0.3), color=COLOURS["throttled"], alpha=0.18,
                   label="429 pause asked for" if i == 0 else None, linewidth=0)
    ax.set_ylim(0, top)
    ax.set_ylabel("requests / s")
    _time_axis(ax, series)
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=2)
    return _svg(fig)


def latency(series: Series) -> str:
    """Answer latency percentiles over time (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.0))
    for name, values in (("p50", series.p50), ("p95", series.p95), ("p99", series.p99)):
        xs = [x for x, v in zip(series.x, values, strict=True) if v is not None]
        ys = [v * 1000 for v in values if v is not None]
        ax.plot(xs, ys, drawstyle="steps-post", color=COLOURS[name], linewidth=1.2, label=name)
    ax.set_yscale("log")
    ax.set_ylabel("answer latency (ms)")
    _time_axis(ax, series)
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=3)
    return _svg(fig)


def bars(counts: Counter[str] | dict[str, int], title: str, colours: dict[str, str] | None = None) -> str:
    """A horizontal bar per key, largest first, with its count written at its end."""
    plt = _pyplot()
    items = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))
    fig, ax = plt.subplots(figsize=(9, 0.45 + 0.32 * max(len(items), 1)))
    names: Sequence[str] = [k for k, _ in items]
    values = [v for _, v in items]
    colour = [(colours or {}).get(k, COLOURS["bar"]) for k in names]
    ax.barh(range(len(items)), values, color=colour)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_title(title, loc="left", fontsize=9)
    ax.spines["bottom"].set_visible(False)
    ax.set_xticks([])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_xlim(0, max(values or [1]) * 1.15)
    return _svg(fig)
