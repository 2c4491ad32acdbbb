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


def run_exit_status(counts: Mapping[str, int], interrupted: bool, aborted: bool) -> ExitStatus:
    if aborted:
        return ExitStatus.ABORTED
    if interrupted:
        return ExitStatus.INTERRUPTED
    bad = (Outcome.FAILED, Outcome.INVALID, Outcome.UNPROCESSED)
    if any(counts.get(o.value, 0) for o in bad):
        return ExitStatus.ROWS_FAILED
    return ExitStatus.OK
