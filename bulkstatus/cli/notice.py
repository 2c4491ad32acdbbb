"""The end of run, resume and track, told to the ``--notify`` URLs (the work is in ``bulkstatus.notify``).

Here because the exit status is the CLI's: the message carries it, and whatever the delivery comes to,
the command's exit status stays what it was.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bulkstatus import logs
from bulkstatus.run.folder import SUMMARY, read_json
from bulkstatus.settings import Settings


def send_notice(settings: Settings, command: str, folder: Path, status: str, exit_code: int,
                fresh: bool = True) -> None:
    """POST the folder's summary.json, with ``status`` and ``exit_code``, to each configured URL; not
    ``fresh``: the session wrote none of its own (stopped at once), so none is sent."""
    urls = settings.get("notify")
    if not urls:
        return
    from bulkstatus.notify import Policy, build_message, notify

    summary: Any = {}
    if fresh:
        try:
            summary = read_json(folder / SUMMARY)
        except (OSError, ValueError):
            summary = {}
    if not isinstance(summary, dict):
        summary = {}
    policy = Policy(backoff=settings.get("backoff"), total=settings.get("notify-timeout"))
    file_log = logs.log_to_file(folder / "run.log")  # what came of it is in the run's log too
    try:
        notify(urls, build_message(summary, command, str(folder.resolve()), status, exit_code), policy)
    finally:
        logging.getLogger("bulkstatus").removeHandler(file_log)
        file_log.close()
