"""`bulkstatus status RUN_FOLDER [--json]`: a run seen from another shell, with no API call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.cli.progress import eta_text
from bulkstatus.jsonio import dumps

NEXT = {
    "died": "its process ended without a word (kill -9, a crash): `bulkstatus resume {folder}` continues it",
    "interrupted": "stopped by a signal: `bulkstatus resume {folder}` continues it",
    "aborted": "stopped on an error (below): fix it, then `bulkstatus resume {folder}`",
    "incomplete": "rows are left unprocessed or in doubt: `bulkstatus resume {folder}` settles them",
}


def render(info: dict[str, Any]) -> str:
    folder = info["folder"]
    lines = [f"run folder: {folder}"]
    if info["active"]:
        lines.append(f"active: yes (pid {info['pid'] or '?'})")
    else:
        note = NEXT.get(info["status"], "").format(folder=folder)
        lines.append(f"active: no; status {info['status']}" + (f": {note}" if note else ""))
    total = info.get("rowsTotal")
    done = info.get("rowsDone") or 0
    share = f" ({100 * done / total:.1f}%)" if total else ""
    lines.append(f"rows: {done:,} done of {total:,}{share}" if total else f"rows: {done:,} done")
    counts = info.get("counts") or {}
    if counts:
        lines.append("outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    if info["active"]:
        pace = info.get("pace")
        lines.append(f"pace: {pace:.1f} rows/s over the last 30 s, ETA {eta_text(info.get('etaSeconds'))}"
                     if pace is not None else "pace: not measured yet")
    if info.get("lastError"):
        lines.append(f"last error: {info['lastError']}")
    if info.get("updatedSecondsAgo") is not None:
        lines.append(f"figures written {info['updatedSecondsAgo']:.0f} s ago")
    return "\n".join(lines)


def status(args: argparse.Namespace) -> int:
    from bulkstatus.run.status import run_status

    info = run_status(Path(args.folder))
    print(dumps(info).decode() if args.json else render(info), file=sys.stdout)
    return ExitStatus.OK
