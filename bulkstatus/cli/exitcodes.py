"""Exit statuses, in one place, and the pure function that picks one for a finished run."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from bulkstatus.model import Outcome


class ExitStatus(IntEnum):
    OK = 0  # every row submitted (duplicates allowed)
    ROWS_FAILED = 1  # finished; some rows failed, invalid or unprocessed
    USAGE = 2  # usage, configuration or unreadable input; nothing sent
    ABORTED = 3  # a systemic failure stopped the run
    PENDING = 4  # track: some requests still pending
    INTERRUPTED = 130  # SIGINT, SIGTERM or SIGHUP: a clean stop, resumable


def run_exit_status(counts: Mapping[str, int], interrupted: bool, aborted: bool,
                    left_by_limit: int = 0) -> ExitStatus:
    """``left_by_limit``: unprocessed rows that --limit left, as asked; they do not make the exit status 1
    (so that ``run --limit 20 F && resume FOLDER`` goes on only when the first 20 went well)."""
    if aborted:
        return ExitStatus.ABORTED
    if interrupted:
        return ExitStatus.INTERRUPTED
    if counts.get(Outcome.FAILED.value, 0) or counts.get(Outcome.INVALID.value, 0):
        return ExitStatus.ROWS_FAILED
    if counts.get(Outcome.UNPROCESSED.value, 0) > left_by_limit:
        return ExitStatus.ROWS_FAILED
    return ExitStatus.OK
