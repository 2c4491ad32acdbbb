"""What `bulkstatus status` tells of a run folder, from its files and its lock alone (no API call)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bulkstatus.run.folder import SUMMARY, Manifest, read_json
from bulkstatus.run.locks import FOLDER_LOCK, holder
from bulkstatus.run.metrics import read_live


def run_status(folder: Path, now: float | None = None) -> dict[str, Any]:
    """The run's state: ``active`` (a process holds the folder's lock) and its ``pid``; rows done of the
    total, outcome counts, current pace and ETA (from live.json, rewritten every second by the run);
    the last error. A run that is not active has its status from run.json (finished, interrupted...)."""
    manifest = Manifest.load(folder)
    now = time.time() if now is None else now
    held = holder(folder / FOLDER_LOCK)
    live = read_live(folder) or {}
    summary: dict[str, Any] = {}
    if (folder / SUMMARY).exists():
        try:
            loaded = read_json(folder / SUMMARY)
            summary = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            summary = {}
    active = held is not None
    counts = live.get("counts") or summary.get("counts") or {}
    done = live.get("rowsDone")
    if done is None:
        done = sum(v for k, v in counts.items() if k != "unprocessed")
    updated = live.get("updatedAt")
    return {
        "folder": str(folder),
        "active": active,
        "pid": held.get("pid") if held else None,
        # run.json says running while a process runs it; one killed (kill -9, a crash) left it so.
        "status": "died" if manifest.status == "running" and not active else manifest.status,
        "input": manifest.input,
        "rowsDone": done,
        "rowsTotal": live.get("rowsTotal") or summary.get("rows"),
        "counts": {k: v for k, v in counts.items() if v},
        "pace": live.get("pace") if active else None,
        "etaSeconds": live.get("etaSeconds") if active else None,
        "lastError": live.get("lastError") or "",
        "updatedSecondsAgo": None if updated is None else round(max(now - float(updated), 0.0), 1),
    }
