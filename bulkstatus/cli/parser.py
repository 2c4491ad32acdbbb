"""The command line: commands, flags and their help. Flags mirror the settings table."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from bulkstatus import __version__
from bulkstatus.errors import BulkStatusError, InputFileError
from bulkstatus.input.locate import check_regular_file
from bulkstatus.run.folder import Manifest
from bulkstatus.settings import SECRET_NAMES, SPEC_BY_NAME, SPECS

_SECRET_WORDS = ("token", "pass", "secret", "key", "auth", "jwt", "cred")


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations (``--ui-token`` is not ``--ui-token-file``), whose errors never echo
    the value of an unknown flag, and which refuses an input path that is not a regular file before any
    command opens it (a FIFO blocks, /dev/zero never ends). Subparsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        known = self._all_options()
        # Before argparse sees them: an unknown secret flag's value would become COMMAND or INPUT.
        for arg in argv[: argv.index("--") if "--" in argv else len(argv)]:
            flag = arg.split("=", 1)[0]
            if flag.startswith("-") and " " not in flag and flag not in known and _looks_secret(flag):
                self._refuse_flag(flag, known)
        parsed, extras = self.parse_known_args(argv, namespace)
        flags = [a for a in extras if a.startswith("-")]
        if flags:
            chosen = self._subparsers_by_name().get(getattr(parsed, "command", None) or "", self)
            chosen._refuse_flag(flags[0], chosen._all_options())
        if extras:
            self.error(f"unexpected argument {extras[0]!r}")
        try:
            if getattr(parsed, "input", None) is not None:  # run, validate
                check_regular_file(Path(parsed.input))
            elif getattr(parsed, "command", None) == "resume":
                _check_resume_input(Path(parsed.folder))
        except InputFileError as exc:
            self.exit(2, f"bulkstatus: error: {exc}\n")
        return parsed

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):  # argparse's own list would show values
            message = "unrecognized arguments (values not shown)"
        super().error(message)

    def _subparsers_by_name(self) -> dict[str, Parser]:
        return next((dict(a.choices) for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})

    def _all_options(self) -> set[str]:
        options = {option for action in self._actions for option in action.option_strings}
        for sub in self._subparsers_by_name().values():
            options |= sub._all_options()
        return options

    def _refuse_flag(self, arg: str, known: set[str]) -> NoReturn:
        """Name an unknown flag, never its value (``--name=value`` is cut at the ``=``)."""
        flag = arg.split("=", 1)[0]
        if _looks_secret(flag):
            name = flag.lstrip("-")
            spec = next((SPEC_BY_NAME[s] for s in SECRET_NAMES if name in s or s in name), None)
            fix = (f"set {spec.env} or use --{spec.name}-file" if spec else
                   "set its BULKSTATUS_* environment variable or name a file with its --*-file flag")
            self.exit(2, f"bulkstatus: unknown option {flag}: secrets are never taken as flags; {fix}\n")
        close = sorted(o for o in known if o.startswith(flag))
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; see {self.prog} --help"
        self.exit(2, f"bulkstatus: unknown option {flag} (flags are never abbreviated){hint}\n")


def _check_resume_input(folder: Path) -> None:
    """The input of an unfinished run, if it is there but no longer a regular file; everything else
    about the folder (not a run's, finished, input gone) is for ``resume`` itself to say."""
    try:
        manifest = Manifest.load(folder)
    except BulkStatusError:
        return
    if manifest.status != "finished" and not manifest.dry_run and os.path.exists(manifest.input):
        check_regular_file(Path(manifest.input), fix="put the run's input file back to resume")


def _looks_secret(flag: str) -> bool:
    return any(word in flag.lower() for word in _SECRET_WORDS)


def _add_settings(parser: argparse.ArgumentParser, names: set[str] | None = None) -> None:
    group = parser.add_argument_group("settings (flag > BULKSTATUS_* environment > profile > [default])")
    for spec in SPECS:
        if (names is not None and spec.name not in names) or spec.own_flag:
            continue
        if spec.secret:
            # A secret never comes from a flag value: only a file holding it can be named.
            group.add_argument(f"--{spec.name}-file", dest=f"{spec.name}-file", metavar="FILE",
                               help=f"file holding the {spec.help} (or {spec.env})")
            continue
        default = f" (default {spec.default})" if spec.default not in (None, "") else ""
        if spec.kind == "bool":
            group.add_argument(f"--{spec.name}", dest=spec.name, action="store_const", const=True,
                               default=None, help=f"{spec.help}{default}")
        elif spec.kind in ("urls", "columns"):
            group.add_argument(f"--{spec.name}", dest=spec.name, metavar="URL" if spec.kind == "urls" else
                               "FIELD=HEADER", action="append", help=f"{spec.help} [{spec.env}]")
        else:
            group.add_argument(f"--{spec.name}", dest=spec.name, metavar="VALUE",
                               help=f"{spec.help}{default} [{spec.env}]")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (default ./bulkstatus.toml when present)")
    parser.add_argument("--profile", metavar="NAME", help="use [profiles.NAME] of the config file")


def _add_pending_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pending-check", dest="pending-check", action="store_const", const=False,
                        default=None, help="send every row, even when its customer has a pending request")


def add_no_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-report", dest="report", action="store_const", const=False, default=None,
                        help=f"do not write report.html at the end (`bulkstatus report` writes it later) "
                             f"[{SPEC_BY_NAME['report'].env}=false]")


def _add_switch(parser: argparse.ArgumentParser, name: str, text: str) -> None:
    """A flag for a boolean setting that also has a BULKSTATUS_* variable and a config key."""
    env = SPEC_BY_NAME[name].env
    parser.add_argument(f"--{name}", dest=name, action="store_const", const=True, default=None,
                        help=f"{text} [{env}]")


def _add_common(parser: argparse.ArgumentParser) -> None:
    _add_switch(parser, "quiet", "no progress bar; warnings and the summary only")
    parser.add_argument("--verbose", action="store_true", help="log each retry and look-up")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bulkstatus",
        description="Change the status of many loyalty customers through Capillary's maker-checker API.",
    )
    parser.add_argument("--version", action="version", version=f"bulkstatus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="submit one maker request per valid row of a CSV file",
                         description="Submit one CUSTOMER-STATUS-CHANGE maker request per valid row.")
    run.add_argument("input", metavar="INPUT", help="CSV file (or .xlsx, .xls, .ods workbook) with "
                     "identifierName,identifierValue,label,reason")
    _add_settings(run)
    _add_switch(run, "dry-run", "send nothing; write requests.jsonl instead")
    _add_switch(run, "sandbox", "start the built-in simulator on a free loopback port and run against it")
    run.add_argument("--new-run", action="store_true",
                     help="start afresh even though an unfinished run of the same file exists")
    run.add_argument("--strict", action="store_true", help="send nothing if any row is invalid")
    _add_pending_check(run)
    add_no_report(run)
    _add_common(run)

    resume = sub.add_parser("resume", help="continue a run that did not finish",
                            description="Continue an unfinished run; rows in doubt are looked up first.")
    resume.add_argument("folder", metavar="RUN_FOLDER", help="the folder the run printed as its last line")
    _add_settings(resume)
    _add_switch(resume, "sandbox", "resume against a new built-in simulator")
    _add_pending_check(resume)
    add_no_report(resume)
    _add_common(resume)

    validate = sub.add_parser("validate", help="check a CSV file offline; sends nothing",
                              description="Check a CSV file offline and report each problem; sends nothing.")
    validate.add_argument("input", metavar="INPUT")
    validate.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    _add_settings(validate, {"label", "reason", "labels", "encoding", "delimiter", "sheet", "column",
                             "identifier-name"})
    _add_common(validate)

    sandbox = sub.add_parser("sandbox", help="run the built-in simulator until stopped, printing its URL",
                             description="Serve the Capillary API simulator on loopback until Ctrl-C.")
    # Values are text, checked by the command (cli/sandbox.py): a bad one is one line, exit 2.
    sandbox.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    sandbox.add_argument("--port", metavar="N", help="port (default: a free one)")
    sandbox.add_argument("--error-rate", metavar="SHARE", help="share of creates answered 5xx, 0 to 1 or N%% (0)")
    sandbox.add_argument("--rate-limit", metavar="RATE",
                         help="creates allowed before 429s, in any second (N/s) or minute (N/min); 0: no limit")
    sandbox.add_argument("--latency", metavar="SECONDS", help="up to this many seconds per create (0)")
    sandbox.add_argument("--not-found", default="", help="comma-separated identifier values answered 8015")
    sandbox.add_argument("--report-every", metavar="SECONDS",
                         help="a summary line this often while it serves (5); 0: only when stopped")
    _add_common(sandbox)
    from bulkstatus.cli.followup import add_parsers

    add_parsers(sub, _add_settings, _add_common)
    report = sub.add_parser("report", help="write report.html of a run folder again",
                            description="Write RUN_FOLDER/report.html from the folder's files; sends nothing.")
    report.add_argument("folder", metavar="RUN_FOLDER")
    _add_common(report)
    status = sub.add_parser("status", help="how a run is going, from another shell (no API call)",
                            description="Active or not, rows done of total, outcomes, pace, ETA, last error.")
    status.add_argument("folder", metavar="RUN_FOLDER")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(status)
    return parser


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user gave on the command line (value not None)."""
    given: dict[str, Any] = {}
    for spec in SPECS:
        value = getattr(args, spec.name, None)
        if value is not None:
            given[spec.name] = value
    for name in SECRET_NAMES:
        value = getattr(args, f"{name}-file", None)
        if value is not None:
            given[f"{name}-file"] = value
    return given
