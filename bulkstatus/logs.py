"""Logging set-up, with every configured secret scrubbed from every line, whatever logged it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

MASK = "***"


class SecretFilter(logging.Filter):
    """Replaces each secret value (and the Basic header built from it) with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.scrub(message)
        record.args = None
        return True


_FORMAT = "%(asctime)s %(levelname)s %(message)s"
_filter = SecretFilter(())


def setup(verbose: bool, quiet: bool) -> None:
    # A log line that cannot be written (a full disk under run.log, a hung-up terminal) is dropped, not
    # turned into a traceback on the terminal; the run's own files report write failures themselves.
    logging.raiseExceptions = False
    root = logging.getLogger("bulkstatus")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_filter)
    root.addHandler(handler)
    root.propagate = False


def add_secrets(secrets: Iterable[str]) -> SecretFilter:
    _filter.secrets = sorted({*_filter.secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len,
                             reverse=True)
    return _filter


def scrub(text: str) -> str:
    """``text`` with every secret known so far masked: for what reaches the files and the terminal
    without the logging module (the error column, the abort line, summary.json)."""
    return _filter.scrub(text) if text else text


def log_to_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_filter)
    logging.getLogger("bulkstatus").addHandler(handler)
    return handler
