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
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkstatus.errors import ConfigError, RunFolderError
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
    """Shared by every user of the machine (a cron job's user and an engineer's): a fixed folder under
    /tmp, not under TMPDIR, which is often one per user or per service (it would hide the other run)."""
    configured = os.environ.get(LOCK_DIR_ENV)
    folder = Path(configured or "/tmp/bulkstatus-locks")
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # another user's folder: they made it world-writable
                folder.chmod(0o1777)
    except OSError as exc:
        where = f"{LOCK_DIR_ENV} {str(folder)!r}" if configured else f"the lock folder {str(folder)!r}"
        raise ConfigError(f"{where} cannot be used ({exc.strerror or exc}): point {LOCK_DIR_ENV} at a folder "
                          "every user of bulkstatus on this machine can write") from None
    return folder


def _holder(path: Path) -> dict[str, Any]:
    try:
        data = loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acquire(path: Path, holder: dict[str, Any], busy: str) -> Lock:
    """Take the lock at ``path`` or raise Busy with ``busy`` followed by who holds it."""
    # O_NOFOLLOW: in a folder anyone may write, a symbolic link planted under the lock's name must not
    # lead our writes to another file.
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except PermissionError:  # another user's lock file: a read-only descriptor holds a flock as well
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot use the lock file {str(path)!r} ({exc.strerror or exc}): if it is a link or "
                          f"not a file, remove it; {LOCK_DIR_ENV} moves the machine's lock folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        other = _holder(path)
        who = f"pid {other.get('pid', '?')}"
        if other.get("input"):
            who += f", input {other['input']}"
        if other.get("folder"):
            who += f", run folder {other['folder']}"
        raise Busy(f"{busy} ({who}): wait for it to end; two at once would send rows twice") from None
    lock = Lock(path, fd)
    _note(lock, holder)
    return lock


def _note(lock: Lock, holder: dict[str, Any]) -> None:
    """Who holds the lock, written only into a file of our own with one name (in a folder anyone may
    write, a hard link planted under the lock's name must not lead our write to another file)."""
    st = os.fstat(lock.fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_nlink == 1:
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same
            os.ftruncate(lock.fd, 0)
            os.lseek(lock.fd, 0, os.SEEK_SET)
            os.write(lock.fd, dumps({"pid": os.getpid(), **holder}))


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock at ``path`` now (pid, folder...), or None when no process does: for `status`,
    which only looks (a shared lock taken and dropped at once; it never waits, never writes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(path) or {"pid": None}
    finally:
        os.close(fd)  # (closing drops a lock taken here)
    return None


def lock_folder(folder: Path) -> Lock:
    """One process per run folder: a second resume of it (or a run writing into it) is refused."""
    return acquire(folder / FOLDER_LOCK, {"folder": str(folder)}, "another bulkstatus is using this run folder")


def lock_input(sha256: str, org: str | None, input_path: Path, folder: Path | None = None) -> Lock:
    """One active run per input content and org on this machine, whatever its --out or file name."""
    key = hashlib.sha256(f"{sha256}\n{org or ''}".encode()).hexdigest()[:32]
    return acquire(machine_lock_dir() / f"input-{key}.lock",
                   {"input": str(input_path), "folder": str(folder) if folder else None},
                   f"another bulkstatus is sending this same input ({input_path.name}) for org {org or '?'}")


def note_folder(lock: Lock, folder: Path, input_path: Path) -> None:
    """Record the run folder in an input lock taken before the folder existed."""
    _note(lock, {"input": str(input_path), "folder": str(folder)})
