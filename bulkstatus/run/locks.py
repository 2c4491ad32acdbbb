"""Operating-system locks that vanish with their process: one process per run folder, and one active run
per input (by content) and org on a machine.

``flock`` locks belong to an open file: when the process ends, however it ends (kill -9 included), the
kernel drops them, so there is never a stale lock to clean up. The lock file itself stays, holding who
had it last (pid, command, run folder), which is what a refusal names.

What a lock cannot see: a run on another machine, or another file that lists the same customers. The
pending check before sending catches those whose requests still wait for a checker; nothing here catches
one whose requests were decided already (README, "Overlapping runs").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkstatus.errors import RunFolderError
from bulkstatus.jsonio import dumps, loads

FOLDER_LOCK = "lock"  # in the run folder
LOCK_DIR_ENV = "BULKSTATUS_LOCK_DIR"


class Busy(RunFolderError):
    """Another process holds the lock (exit 2)."""


@dataclass
class Lock:
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def machine_lock_dir() -> Path:
    """Shared by every user of the machine (a cron job's user and an engineer's), like /tmp itself."""
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "bulkstatus-locks")
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another user's folder: they made it world-writable
            folder.chmod(0o1777)
    return folder


def _holder(path: Path) -> dict[str, Any]:
    try:
        data = loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acquire(path: Path, holder: dict[str, Any], busy: str) -> Lock:
    """Take the lock at ``path`` or raise Busy with ``busy`` followed by who holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: a read-only descriptor holds a flock as well
        fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        other = _holder(path)
        who = f"pid {other.get('pid', '?')}"
        if other.get("folder"):
            who += f", run folder {other['folder']}"
        raise Busy(f"{busy} ({who}): wait for it to end; two at once would send rows twice") from None
    with contextlib.suppress(OSError):  # read-only (another user's file) or a full disk: the lock holds
        os.ftruncate(fd, 0)
        os.write(fd, dumps({"pid": os.getpid(), **holder}))
    return Lock(path, fd)


def lock_folder(folder: Path) -> Lock:
    """One process per run folder: a second resume of it (or a run writing into it) is refused."""
    return acquire(folder / FOLDER_LOCK, {"folder": str(folder)},
                   f"another bulkstatus is using the run folder {str(folder)!r}")


def lock_input(sha256: str, org: str | None, input_path: Path, folder: Path | None = None) -> Lock:
    """One active run per input content and org on this machine, whatever its --out or file name."""
    key = hashlib.sha256(f"{sha256}\n{org or ''}".encode()).hexdigest()[:32]
    return acquire(machine_lock_dir() / f"input-{key}.lock",
                   {"input": str(input_path), "folder": str(folder) if folder else None},
                   f"another bulkstatus is sending this same input ({input_path.name}) for org {org or '?'}")


def note_folder(lock: Lock, folder: Path, input_path: Path) -> None:
    """Record the run folder in an input lock taken before the folder existed."""
    with contextlib.suppress(OSError):
        os.ftruncate(lock.fd, 0)
        os.lseek(lock.fd, 0, os.SEEK_SET)
        os.write(lock.fd, dumps({"pid": os.getpid(), "input": str(input_path), "folder": str(folder)}))
