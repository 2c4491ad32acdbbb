"""Every timestamp bulkstatus writes or reads, in one place: UTC, ISO 8601, a ``Z`` for UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

_stamp_second = -1  # the whole second whose text ``_stamp_prefix`` holds
_stamp_prefix = ""


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(when: datetime) -> str:
    """To the second: ``2026-11-29T09:30:00Z`` (run.json, summary.json)."""
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def folder_stamp(when: datetime) -> str:
    """For a run folder's name: ``20261129T093000Z``."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def stamp_ms() -> str:
    """Now to the millisecond, ``2026-11-29T09:30:00.123Z`` (one per result row: the text of the second
    is formatted once a second, not once a row)."""
    global _stamp_second, _stamp_prefix
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _stamp_second = second
    return f"{_stamp_prefix}.{int((now - second) * 1000):03d}Z"


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
