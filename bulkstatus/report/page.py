"""report.html: the run folder's data (``data.load``) through the template, charts inline.

Jinja2 escapes every value it puts in the page: error messages are the server's words and row values
are the input's, either of which may hold ``<script>``. The charts are matplotlib's own SVG, put in
unescaped on purpose (``|safe``); nothing else is.
"""

from __future__ import annotations

import os
from pathlib import Path

from bulkstatus.report import charts
from bulkstatus.report.data import ReportData, load

REPORT = "report.html"


def render(data: ReportData) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("bulkstatus.report", "."), autoescape=select_autoescape(["j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = lambda s: "–" if s is None else f"{s * 1000:,.0f} ms"
    env.filters["num"] = lambda n: "–" if n is None else f"{n:,}"
    summary = data.summary
    counts = {k: v for k, v in (summary.get("counts") or {}).items() if v}
    series = data.series
    tracked = summary.get("tracking") or None
    template = env.get_template("report.html.j2")
    return template.render(
        title=data.folder.name,
        folder=str(data.folder),
        summary=summary,
        counts=counts,
        errors=data.errors,
        other_errors=data.other_errors,
        states=dict(data.states),
        tracked=tracked,
        series=series,
        rate=data.rate_per_second,
        percentiles=[(name, series.overall(share)) for name, share in
                     (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))],
        answers=sorted(series.answers.items(), key=lambda kv: -kv[1]),
        settings=sorted((summary.get("settings") or {}).items()),
        outcome_chart=charts.bars(counts, "rows by outcome", charts.OUTCOME_COLOURS) if counts else "",
        pace_chart=charts.pace(series, data.rate_per_second) if series.x else "",
        latency_chart=charts.latency(series) if series.latency else "",
        states_chart=charts.bars(data.states, "requests by state (results.csv)") if data.states else "",
    )


def write_report(folder: Path) -> Path:
    """Write ``folder/report.html`` (atomically) and return its path; OSError if it cannot be."""
    html = render(load(folder))
    path = folder / REPORT
    tmp = folder / (REPORT + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
