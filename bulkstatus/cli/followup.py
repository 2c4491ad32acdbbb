"""The commands that follow a run: ``track`` (where are my requests?) and ``approve`` (the checker's side).

Like the rest of the CLI package, this is where argv, terminals, prompts and exit statuses live; the work
is in ``bulkstatus.followup.track`` and ``bulkstatus.followup.approve``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bulkstatus.api.listing import API_SETTINGS, FINAL_STATES, PENDING
from bulkstatus.cli.exitcodes import ExitStatus
from bulkstatus.cli.notice import send_notice
from bulkstatus.cli.reporting import report_after
from bulkstatus.errors import ConfigError, RunAborted
from bulkstatus.logs import scrub
from bulkstatus.preflight import check_connection
from bulkstatus.run.folder import Manifest
from bulkstatus.settings import Settings

log = logging.getLogger("bulkstatus")
AddSettings = Callable[..., None]
BAD_STATES = frozenset({"rejected", "failed", "not-found"})
TRACK_STATUS = {ExitStatus.OK: "all-approved", ExitStatus.ROWS_FAILED: "some-not-approved",
                ExitStatus.PENDING: "some-pending"}  # the `status` of track's --notify message


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _folder_command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A command whose argument is a run's folder."""
    command: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=description)
    command.add_argument("folder", metavar="RUN_FOLDER", help="the folder the run printed as its last line")
    return command


def add_parsers(sub: Any, add_settings: AddSettings, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    track = _folder_command(
        sub, "track", "look up the current state of a run's requests and record it",
        "Look up the state of every request a run made (AdminTask, approved, rejected, failed) and record it "
        "in results.csv (state, stateCheckedAt) and summary.json (tracking). "
        "Exit 0 all approved, 1 some rejected or failed, 4 some still pending.")
    track.add_argument("--wait", action="store_true", help="poll until every request is final")
    track.add_argument("--wait-timeout", type=_seconds, default=3600.0, metavar="S",
                       help="give up waiting after S seconds (default 3600)")
    track.add_argument("--wait-interval", type=_seconds, default=30.0, metavar="S",
                       help="seconds between two looks while waiting (default 30)")
    add_settings(track, set(API_SETTINGS) | {"notify", "notify-timeout"})
    from bulkstatus.cli.parser import add_no_report

    add_no_report(track)
    add_common(track)

    approve = _folder_command(
        sub, "approve", "approve or reject a run's pending requests, as the checker",
        "Decide every request of a run that is still AdminTask, with the checker's own UI token "
        "(BULKSTATUS_UI_TOKEN or --ui-token-file in the checker's shell). Each decision and its answer go to "
        "approvals.csv (outcome: decided, refused, not-applied, no-answer or in-doubt). "
        "Exit 0 all accepted, 1 some refused or failed.")
    approve.add_argument("--decision", required=True, choices=("approved", "rejected"))
    approve.add_argument("--message", required=True, metavar="TEXT", help="actionMessage sent with each decision")
    approve.add_argument("--only", metavar="FILE",
                         help="decide only the rows of this CSV (by requestId, else identifierName+identifierValue)")
    approve.add_argument("--yes", action="store_true",
                         help="do not ask for confirmation (required when stdin is not a terminal)")
    add_settings(approve, set(API_SETTINGS))
    add_common(approve)


def _api_settings(args: argparse.Namespace, manifest: Manifest) -> Settings:
    """The caller's settings; base-url and org-id fall back to the run's own when set nowhere else."""
    from bulkstatus.cli.commands import load_settings

    settings = load_settings(args)
    fallback = {name.replace("-", "_"): manifest.settings.get(name) for name in ("base-url", "org-id")
                if settings.origins.get(name) == "default" and manifest.settings.get(name)}
    if fallback:
        settings = settings.replace(**fallback)
    check_connection(settings)
    return settings


def _counts_text(counts: Mapping[str, int]) -> str:
    order = [PENDING, *sorted(FINAL_STATES)]
    keys = [k for k in order if counts.get(k)] + sorted(k for k in counts if k not in order and counts[k])
    return ", ".join(f"{k} {counts[k]}" for k in keys) or "none"


def tracking_exit_status(counts: Mapping[str, int]) -> ExitStatus:
    """4 while anything is not final (the answer may still change), else 1 if any was not approved."""
    if any(n and state not in FINAL_STATES | {"not-found"} for state, n in counts.items()):
        return ExitStatus.PENDING
    if any(counts.get(state) for state in BAD_STATES):
        return ExitStatus.ROWS_FAILED
    return ExitStatus.OK


class _WaitBar:
    """A bar of settled requests on a terminal, a log line per poll elsewhere."""

    def __init__(self, quiet: bool) -> None:
        self._bar: Any = None
        self._quiet = quiet

    def __call__(self, settled: int, total: int) -> None:
        if self._quiet:
            return
        if self._bar is None and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="request", desc="final", dynamic_ncols=True, file=sys.stderr)
        if self._bar is not None:
            self._bar.update(settled - self._bar.n)
        else:
            log.info("track: %d of %d requests final", settled, total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def track(args: argparse.Namespace) -> int:
    from bulkstatus.followup.track import UNCHECKED, WaitOptions, trackable
    from bulkstatus.followup.track import track as track_run

    folder = Path(args.folder)
    settings = _api_settings(args, trackable(folder))
    bar = _WaitBar(args.quiet or not args.wait)
    options = WaitOptions(wait=args.wait, timeout=args.wait_timeout, interval=args.wait_interval, on_poll=bar)
    try:
        report = asyncio.run(track_run(folder, settings, options))
    except RunAborted as exc:
        bar.close()
        print(f"bulkstatus: aborted: {scrub(str(exc))}", file=sys.stderr)
        send_notice(settings, "track", folder, "aborted", ExitStatus.ABORTED)
        return ExitStatus.ABORTED
    except KeyboardInterrupt:
        bar.close()
        print("bulkstatus: interrupted", file=sys.stderr)
        send_notice(settings, "track", folder, "interrupted", ExitStatus.INTERRUPTED)
        return ExitStatus.INTERRUPTED
    finally:
        bar.close()
    err = sys.stderr
    print(f"bulkstatus track: {report.requests} requests: {_counts_text(report.counts)} "
          f"({report.api_calls} API call(s), {report.polls} look(s))", file=err)
    if report.counts.get(UNCHECKED):
        print(f"  {report.counts[UNCHECKED]} could not be looked up ({report.last_problem}): run track again",
              file=err)
    if report.timed_out:
        print(f"  still not final after --wait-timeout {args.wait_timeout:g} s: run track again later", file=err)
    _print_redo(folder, report.redo_rows, report.reasons)
    report_after(folder, enabled=bool(settings.get("report")))
    print(folder)
    status = tracking_exit_status(report.counts)
    send_notice(settings, "track", folder, TRACK_STATUS[status], status)
    return status


def _print_redo(folder: Path, rows: int, reasons: Mapping[str, int], shown: int = 3) -> None:
    """Where the rejected and failed rows are, and the commonest reasons, on stderr."""
    from bulkstatus.followup.redo import REDO

    if not rows:
        return
    redo = folder / REDO
    print(f"  {rows} rejected or failed after approval, each with its reason (stateReason) in {redo}; "
          f"fix them there, then: bulkstatus run {redo}", file=sys.stderr)
    common = sorted(reasons.items(), key=lambda kv: -kv[1])
    for reason, count in common[:shown]:
        print(f"    {count} x {reason}", file=sys.stderr)
    if len(common) > shown:
        print(f"    ... and {len(common) - shown} other reason(s)", file=sys.stderr)


def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def approve(args: argparse.Namespace) -> int:
    from bulkstatus.followup.approve import APPROVALS, decide, plan

    if not args.yes and not sys.stdin.isatty():
        raise ConfigError("stdin is not a terminal, so approve does not ask, and a piped `y` is not taken as "
                          "an answer: pass --yes to decide without asking")
    folder = Path(args.folder)
    settings = _api_settings(args, Manifest.load(folder))
    only = Path(args.only) if args.only else None
    todo = asyncio.run(plan(folder, settings, only))
    verb = {"approved": "approve", "rejected": "reject"}[args.decision]
    err = sys.stderr
    print(f"bulkstatus approve: {len(todo.pending)} request(s) of {folder} are waiting for a checker"
          + (f"; not pending: {_counts_text(todo.others)}" if todo.others else ""), file=err)
    if todo.unmatched_only:
        print(f"  {todo.unmatched_only} row(s) of {only} match no submitted request of this run", file=err)
    if not todo.pending:
        print("  nothing to decide", file=err)
        print(folder)
        return ExitStatus.OK
    if not args.yes and not _confirm(f"{verb.capitalize()} {len(todo.pending)} request(s) with message "
                                     f"{args.message!r}? [y/N] "):
        print("bulkstatus approve: cancelled; nothing was decided", file=err)
        return ExitStatus.USAGE
    report = asyncio.run(decide(todo, settings, args.decision, args.message))
    print(f"bulkstatus approve: {report.accepted} accepted, {report.refused} refused or failed "
          f"({_counts_text(report.counts)}); every answer is in {folder / APPROVALS}", file=err)
    if report.aborted:
        print(f"bulkstatus: aborted: {report.aborted}", file=err)
    elif report.refused:
        print("  the rows whose outcome is not `decided` in approvals.csv say why in their error column", file=err)
        if report.refused_by_status.get(403):
            print("  403 code 4000: the maker cannot decide their own requests; the checker needs "
                  "CanCheckRequest", file=err)
        if report.refused_by_status.get(400):
            print("  400: most often the request was no longer pending (decided by someone else meanwhile)",
                  file=err)
    print(folder)
    if report.aborted:
        return ExitStatus.ABORTED
    return ExitStatus.ROWS_FAILED if report.refused else ExitStatus.OK
