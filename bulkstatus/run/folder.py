"""A run folder's identity: where it is, what it ran on, and whether it finished."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkstatus import __version__
from bulkstatus.errors import InputFileError, RunFolderError
from bulkstatus.jsonio import dumps, loads
from bulkstatus.timestamps import folder_stamp, now_utc, parse_iso

MANIFEST = "run.json"
SUMMARY = "summary.json"
REQUESTS = "requests.jsonl"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise InputFileError(f"cannot read {str(path)!r} ({exc.strerror}): check the path") from None
    return digest.hexdigest()


# What tells that a file changed under a reader: the same inode, size and times.
Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def hash_input(path: Path) -> tuple[str, Identity]:
    """The input's SHA-256 and its identity while it was hashed; InputFileError when it changed meanwhile
    (an export job rewriting it), since the hash would then name bytes no reader sees."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            before = identity(os.fstat(fh.fileno()))
            while block := fh.read(1 << 20):
                digest.update(block)
            after = identity(os.fstat(fh.fileno()))
    except OSError as exc:
        raise InputFileError(f"cannot read {str(path)!r} ({exc.strerror}): check the path") from None
    if before != after:
        raise InputFileError(f"{str(path)!r} changed while it was being read: wait until whatever writes it "
                             "has finished, then run it again")
    return digest.hexdigest(), before


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(dumps(data))
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # the old file is still whole
        with contextlib.suppress(OSError):
            tmp.unlink()
        from bulkstatus.run.journal import output_error

        raise output_error(path, exc) from None


def read_json(path: Path) -> Any:
    return loads(path.read_bytes())



@dataclass
class Manifest:
    folder: Path
    input: str
    sha256: str
    started_at: str
    status: str  # running | finished | interrupted | aborted
    settings: dict[str, Any]
    dry_run: bool = False

    @property
    def started(self) -> datetime:
        """When the run first started (every look-up window of its requests is reckoned from this)."""
        return parse_iso(self.started_at) or now_utc()

    def save(self) -> None:
        write_json(self.folder / MANIFEST, {
            "tool": "bulkstatus", "version": __version__, "input": self.input, "sha256": self.sha256,
            "startedAt": self.started_at, "status": self.status, "dryRun": self.dry_run,
            "settings": self.settings,
        })

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise RunFolderError(f"{str(folder)!r} is not a bulkstatus run folder (no {MANIFEST}): "
                                 "give the folder a run printed as its last line")
        try:
            data = read_json(path)
            return cls(folder, data["input"], data["sha256"], data["startedAt"], data["status"],
                       dict(data.get("settings") or {}), bool(data.get("dryRun")))
        except (OSError, ValueError, KeyError, TypeError):
            raise RunFolderError(f"{str(path)!r} is damaged: it cannot be resumed") from None


def new_run_folder(out: Path, input_path: Path, started: datetime) -> Path:
    """``{out}/{input stem}-{UTC timestamp}``; a numeric suffix if two runs start in the same second."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the output folder {str(out)!r} ({exc.strerror}): "
                             "choose another with --out") from None
    base = f"{input_path.stem}-{folder_stamp(started)}"
    for n in range(1, 1000):
        folder = out / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunFolderError(f"cannot create {str(folder)!r} ({exc.strerror})") from None
    raise RunFolderError(f"too many runs named {base!r} in {str(out)!r}")


def unfinished_runs(out: Path, sha256: str) -> list[Path]:
    """Run folders under ``out`` for the same input bytes that did not finish, newest first."""
    if not out.is_dir():
        return []
    found = []
    for manifest in out.glob(f"*/{MANIFEST}"):
        try:
            data = read_json(manifest)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("sha256") == sha256 and data.get("status") != "finished" \
                and not data.get("dryRun"):
            found.append(manifest.parent)
    return sorted(found, key=lambda p: p.name, reverse=True)

