"""The only layer that knows argv, terminals and exit statuses.

``main`` maps every exception of our own to a one-line message and its exit status; ``program`` is the
work without that error handling.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bulkstatus import logs
from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.cli.parser import build_parser
from bulkstatus.errors import BulkStatusError, ConfigError, InputFileError, RunAborted, RunFolderError


def program(args: argparse.Namespace) -> int:
    from bulkstatus.cli import commands, followup, reporting, status

    handler = {
        "report": reporting.report,
        "status": status.status,
        "run": commands.run,
        "resume": commands.resume,
        "validate": commands.validate,
        "sandbox": commands.sandbox,
        "track": followup.track,
        "approve": followup.approve,
    }[args.command]
    return handler(args)


class _Unbroken:
    """A standard stream whose failures (a full disk under a cron log, a closed pipe, /dev/full) are
    dropped: what the run did is in its files, and the exit status must say that, not the terminal's state."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Unbroken(sys.stdout), _Unbroken(sys.stderr)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return ExitStatus.USAGE if exc.code not in (0, None) else ExitStatus.OK
    logs.setup(verbose=getattr(args, "verbose", False), quiet=getattr(args, "quiet", False))
    try:
        return program(args)
    except (ConfigError, InputFileError, RunFolderError) as exc:
        print(f"bulkstatus: error: {logs.add_secrets(()).scrub(str(exc))}", file=sys.stderr)
        return ExitStatus.USAGE
    except RunAborted as exc:
        print(f"bulkstatus: aborted: {logs.add_secrets(()).scrub(str(exc))}", file=sys.stderr)
        return ExitStatus.ABORTED
    except BulkStatusError as exc:  # pragma: no cover - every subclass is handled above
        print(f"bulkstatus: error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("bulkstatus: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # a bug: say so in one line; the traceback goes to the log, secrets masked
        logging.getLogger("bulkstatus").debug("internal error", exc_info=True)
        message = logs.add_secrets(()).scrub(f"{type(exc).__name__}: {exc}")
        print(f"bulkstatus: internal error ({message}); run with --verbose for the traceback, and resume the "
              "run once it is fixed", file=sys.stderr)
        return ExitStatus.ABORTED
