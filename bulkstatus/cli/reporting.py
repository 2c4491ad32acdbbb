"""report.html at the end of run, resume and track, and the `report` command that writes it again."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.run.folder import Manifest

log = logging.getLogger(__name__)


def report_after(folder: Path, interrupted: bool = False, enabled: bool = True) -> None:
    """Write the folder's report.html, saying where; never changes the exit status. After a signal the
    user asked to be let go: the page (a second or two for a big run) is left to `bulkstatus report`."""
    if not enabled:
        return
    if interrupted:
        print(f"  report:      not written after a stop; `bulkstatus report {folder}` writes it", file=sys.stderr)
        return
    from bulkstatus.report.page import write_report

    try:
        path = write_report(folder)
    except Exception as exc:  # the run's own files hold what it did; the page is a view of them
        log.warning("report.html was not written (%s: %s); `bulkstatus report %s` tries again",
                    type(exc).__name__, exc, folder)
        return
    print(f"  report:      {path}", file=sys.stderr)


def report(args: argparse.Namespace) -> int:
    from bulkstatus.report.page import write_report

    folder = Path(args.folder)
    Manifest.load(folder)  # one line for a folder that is not a run's
    path = write_report(folder)
    print(path)
    return ExitStatus.OK
