"""The only layer that knows argv, terminals and exit statuses.

``main`` maps every exception of our own to a one-line message and its exit status; ``program`` is the
work without that error handling.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bulkstatus import logs
from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.cli.parser import build_parser
from bulkstatus.errors import BulkStatusError, ConfigError, InputFileError, RunAborted, RunFolderError


def program(args: argparse.Namespace) -> int:
    from bulkstatus.cli import commands, followup

    handler = {
        "run": commands.run,
        "resume": commands.resume,
        "validate": commands.validate,
        "sandbox": commands.sandbox,
        "track": followup.track,
        "approve": followup.approve,
    }[args.command]
    return handler(args)


def main(argv: Sequence[str] | None = None) -> int:
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
