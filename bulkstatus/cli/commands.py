"""What each command does, once argv is parsed: settings, run folder, run, summary, exit status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkstatus import logs
from bulkstatus.api.bodies import basic_authorization, inner_authorization
from bulkstatus.api.pacer import Pacer
from bulkstatus.cli.exitcodes import ExitStatus, run_exit_status
from bulkstatus.cli.notice import send_notice
from bulkstatus.cli.parser import settings_flags
from bulkstatus.cli.progress import Progress
from bulkstatus.cli.reporting import report_after
from bulkstatus.cli.sandbox import as_sent
from bulkstatus.errors import InputFileError, OutputError, RunFolderError
from bulkstatus.input.locate import check_regular_file
from bulkstatus.input.sniff import ReadOptions
from bulkstatus.input.structure import check_structure, count_data_rows
from bulkstatus.model import Outcome
from bulkstatus.preflight import check_for_sending
from bulkstatus.run.folder import Identity, Manifest, hash_input, new_run_folder, unfinished_runs
from bulkstatus.run.journal import FIX, RESULTS, RETRY, read_resume_point
from bulkstatus.run.locks import Lock, lock_folder, lock_input, note_folder
from bulkstatus.settings import SPEC_BY_NAME, Settings, resolve
from bulkstatus.timestamps import iso, now_utc

if TYPE_CHECKING:
    from bulkstatus.run.runner import Job, Run, RunReport

log = logging.getLogger("bulkstatus")


def load_settings(args: argparse.Namespace, flags: dict[str, Any] | None = None) -> Settings:
    config = getattr(args, "config", None)
    path = Path(config) if config else Path("bulkstatus.toml")
    settings = resolve(flags if flags is not None else settings_flags(args), config_path=path,
                       config_explicit=bool(config), profile=getattr(args, "profile", None))
    register_secrets(settings)
    if settings.get("quiet") and not getattr(args, "quiet", None):  # from the environment or config file
        logs.setup(verbose=getattr(args, "verbose", False), quiet=True)
    return settings


def register_secrets(settings: Settings) -> None:
    secrets = settings.secrets()
    if settings.get("api-user") and settings.get("api-password"):
        secrets.append(basic_authorization(settings.get("api-user"), settings.get("api-password")))
    if settings.get("intouch-authorization") or settings.get("intouch-password"):
        secrets.append(inner_authorization(settings))
    logs.add_secrets(secrets)


def read_options(settings: Settings) -> ReadOptions:
    labels = settings.get("labels")
    return ReadOptions(
        encoding=settings.get("encoding"),
        delimiter=settings.get("delimiter"),
        default_label=settings.get("label"),
        default_reason=settings.get("reason"),
        allowed_labels=frozenset(x.strip() for x in labels.split(",") if x.strip()) if labels else None,
        columns=tuple((settings.get("column") or {}).items()),
        default_name=settings.get("identifier-name"),
        sheet=settings.get("sheet"),
    )


async def _with_sandbox(settings: Settings, body: Callable[[Settings], Awaitable[int]]) -> int:
    from bulkstatus.cli.sandbox import sandbox_config, sandbox_settings
    from bulkstatus.sim import Simulator

    sim = Simulator(sandbox_config())
    url = await sim.start()
    log.info("sandbox: simulator listening on %s (nothing leaves this machine)", url)
    try:
        sandboxed = settings.replace(**sandbox_settings(url))
        register_secrets(sandboxed)
        return await body(sandboxed)
    finally:
        await sim.stop()


def _open_reader_check(path: Path, options: ReadOptions) -> None:
    """Check the header and the whole file's structure now, so that a bad file sends nothing at all."""
    check_regular_file(path)
    check_structure(path, options)


def _import_runner_in_background() -> Callable[[], Any]:
    """Import the runner (and pandas with it, 0.4 s) on a thread and return what waits for it, while the
    main thread checks the input (decoding and csv release the GIL in part)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
    future = pool.submit(importlib.import_module, "bulkstatus.run.runner")
    pool.shutdown(wait=False)
    return future.result


def _sha256_in_background(path: Path) -> Callable[[], tuple[str, Identity]]:
    """Start the input's SHA-256 in a thread and return what waits for it: hashing releases the GIL,
    so a million rows are hashed while their structure is checked, not after (0.05 s off the start)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    future = pool.submit(hash_input, path)
    pool.shutdown(wait=False)
    return future.result


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    input_path = Path(args.input)
    options = read_options(settings)
    check_regular_file(input_path)  # before any thread opens it (the parser checked too; a path can change)
    runner_imported = _import_runner_in_background()
    sha256 = _sha256_in_background(input_path)
    _open_reader_check(input_path, options)
    dry_run = bool(settings.get("dry-run"))
    check_for_sending(as_sent(settings), need_credentials=not dry_run)
    if args.strict:
        _refuse_invalid(input_path, options)
    sha, input_identity = sha256()
    out = Path(settings.get("out"))
    held: list[Lock] = []
    try:
        # Taken before the look for an unfinished run, so that two runs started together cannot both
        # find none; a dry run sends nothing and takes none.
        if not dry_run:
            held.append(lock_input(sha, settings.get("org-id"), input_path))
        if not dry_run and not args.new_run:
            unfinished = unfinished_runs(out, sha)
            if unfinished:
                raise RunFolderError(
                    f"{str(unfinished[0])!r} is an unfinished run of this same file: continue it with "
                    f"`bulkstatus resume {unfinished[0]}`, or pass --new-run to start afresh"
                )
        started = now_utc()
        folder = new_run_folder(out, input_path, started)
        held.append(lock_folder(folder))
        if not dry_run:
            note_folder(held[0], folder, input_path)
        manifest = Manifest(folder, str(input_path.resolve()), sha, iso(started), "running", settings.public(),
                            dry_run=dry_run)
        try:
            manifest.save()  # at once: an unfinished run is visible from here on
        except OutputError as exc:
            raise OutputError(str(exc).split(", then `bulkstatus resume")[0]
                              + ", then run the file again (nothing was sent)") from None
        runner_imported()
        from bulkstatus.run.runner import Job

        job = Job(settings, input_path, manifest, options, dry_run=dry_run, input_identity=input_identity)
        total = count_data_rows(input_path, options.sheet)
        return _execute(job, args, total, initial=0, session="dry run" if dry_run else "run")
    finally:
        for lock in reversed(held):
            lock.release()


def resume(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    Manifest.load(folder)  # a clear message for a folder that is not a run's, before a lock file is made
    held = [lock_folder(folder)]
    try:
        return _resume(args, folder, held)
    finally:
        for lock in reversed(held):
            lock.release()


def _resume(args: argparse.Namespace, folder: Path, held: list[Lock]) -> int:
    manifest = Manifest.load(folder)  # again, now that no other process can be changing it
    if manifest.dry_run:
        raise RunFolderError(f"{str(folder)!r} is a dry run: it sent nothing, so there is nothing to resume; "
                             "run the file again without --dry-run")
    if manifest.status == "finished":
        print(f"bulkstatus: {folder} finished already; nothing to resume", file=sys.stderr)
        print(folder)
        return ExitStatus.OK
    flags = settings_flags(args)
    # The run's own settings hold unless a flag says otherwise now; secrets come from the environment.
    stored = {k: v for k, v in manifest.settings.items()
              if k in SPEC_BY_NAME and not SPEC_BY_NAME[k].secret and v is not None and k not in flags
              and not SPEC_BY_NAME[k].per_session}  # --limit, --notify: this session's own, if any
    stored.update(flags)
    settings = load_settings(args, stored)
    input_path = Path(manifest.input)
    if not input_path.exists():
        raise RunFolderError(f"the run's input {manifest.input!r} is gone: put it back to resume")
    check_regular_file(input_path, fix="put the run's input file back to resume")
    sha, input_identity = hash_input(input_path)
    if sha != manifest.sha256:
        raise RunFolderError(f"the input {manifest.input!r} changed since the run started (SHA-256 differs): "
                             "resume needs the same file; start a new run for a new file")
    check_for_sending(as_sent(settings), need_credentials=True)
    held.append(lock_input(manifest.sha256, settings.get("org-id"), input_path, folder))
    point = read_resume_point(folder)
    log.info("resuming %s: rows 1-%d complete, %d more finished, %d in doubt", folder, point.last_row,
             len(point.finished), len(point.in_doubt))
    from bulkstatus.run.runner import Job

    job = Job(settings, input_path, manifest, read_options(settings), resume=point, input_identity=input_identity)
    total = count_data_rows(input_path, job.read_options.sheet)
    return _execute(job, args, total, initial=point.last_row, session="resume")


def _refuse_invalid(path: Path, options: ReadOptions) -> None:
    from bulkstatus.input.validation import validate_file

    report = validate_file(path, options)
    if report.invalid:
        raise InputFileError(f"--strict: {report.invalid} row(s) are invalid, so nothing was sent: "
                             f"see `bulkstatus validate {path}`")


def _execute(job: Job, args: argparse.Namespace, total: int | None, initial: int, session: str) -> int:
    progress = Progress(total, bool(job.settings.get("quiet")), initial=initial)
    job.on_result = progress
    job.expected_rows = total or 0
    file_log = logs.log_to_file(job.manifest.folder / "run.log")
    rate = job.settings.get("rate")
    log.info("%s: input %s (%s rows, SHA-256 %s), rate %s, run folder %s",
             session, job.input_path, total if total is not None else "?",
             job.manifest.sha256[:12], rate.text if rate else "?", job.manifest.folder)
    try:
        with progress.logging():
            report, status = asyncio.run(_run_with_signals(job, args))
    except asyncio.CancelledError:
        # A second Ctrl-C / SIGTERM: the journal is flushed and synced, nothing else is written.
        progress.close()
        log.warning("stopped at once: status interrupted, exit %d; resume continues the run",
                    ExitStatus.INTERRUPTED)
        print(f"bulkstatus: stopped at once; continue with: bulkstatus resume {job.manifest.folder}",
              file=sys.stderr)
        print(job.manifest.folder)
        send_notice(job.settings, args.command, job.manifest.folder, "interrupted", ExitStatus.INTERRUPTED,
                    fresh=False)
        return ExitStatus.INTERRUPTED
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()) if v)
        log.info("ended: status %s, exit %d (%s)", job.manifest.status, status, counts or "no rows")
    finally:
        progress.close()
        logging.getLogger("bulkstatus").removeHandler(file_log)
        file_log.close()
    _print_summary(report, job)
    report_after(job.manifest.folder, interrupted=report.interrupted, enabled=bool(job.settings.get("report")))
    print(job.manifest.folder)
    send_notice(job.settings, args.command, job.manifest.folder, job.manifest.status, status)
    return status


async def _run_with_signals(job: Job, args: argparse.Namespace) -> tuple[RunReport, int]:
    report: RunReport | None = None

    async def body(settings: Settings) -> int:
        nonlocal report
        job.settings = settings
        from bulkstatus.run.runner import Run

        runner = Run(job)
        _install_signals(runner)
        report = await runner.execute()
        return run_exit_status(report.counts, report.interrupted, report.abort_reason is not None,
                               report.left_by_limit)

    if job.settings.get("sandbox"):
        status = await _with_sandbox(job.settings, body)
    else:
        status = await body(job.settings)
    assert report is not None
    return report, status


def _install_signals(runner: Run) -> None:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal(name: str) -> None:
        if name == "SIGHUP":
            _leave_terminal()
        if runner.stop.interrupted:
            log.warning("%s again: stopping at once; `bulkstatus resume %s` continues the run", name,
                        runner.job.manifest.folder)
            if main_task is not None:
                main_task.cancel()
            return
        runner.stop.interrupt()
        log.warning("%s: starting no new rows; in-flight requests have %.0f s to finish (again to stop "
                    "at once)", name, runner.job.settings.get("grace"))

    # SIGHUP (the terminal closed, an ssh session dropped) stops like SIGTERM: files complete, resumable.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)


def _leave_terminal() -> None:
    """After a hang-up, what went to the terminal goes nowhere (a write to a hung-up terminal fails, and
    must not stop the run half-way); a pipe or a file (a cron log) keeps its lines. run.log has them all."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _print_summary(report: RunReport, job: Job) -> None:
    counts = report.counts
    rows = sum(counts.values())
    seconds = report.duration
    parts = [f"{o.value} {counts.get(o.value, 0)}" for o in Outcome if counts.get(o.value, 0)]
    err = sys.stderr
    print(f"\nbulkstatus: {rows} rows in {seconds:.1f} s: " + (", ".join(parts) or "nothing to do"), file=err)
    if report.requests_started:
        rate = job.settings.get("rate")
        print(f"  requests: {report.requests_started} sent ({report.requests_started / max(seconds, 1e-9):.1f}/s, "
              f"pace {rate.text if rate else '?'}), retries {report.retries}, throttled answers "
              f"{report.throttled}", file=err)
    if report.server_allowed is not None:
        print(f"  the server allowed about {report.server_allowed:.1f} requests/s (answered 429 above it): "
              f"ask for --rate {report.server_allowed * Pacer.SAFE:.1f}/s next time", file=err)
    folder = job.manifest.folder
    print(f"  results:     {folder / RESULTS}", file=err)
    if report.abort_reason:
        print(f"  ABORTED: {report.abort_reason}", file=err)
    if report.abort_reason and job.expected_rows > rows:  # nothing more could be written or trusted
        # (the total is the input's line count: about, when reasons hold line breaks)
        print(f"  not reached: about {job.expected_rows - rows} of the input's {job.expected_rows} rows have no "
              "line in results.csv yet, nor in the files of rows to run again: resume records them", file=err)
    if report.left_by_limit:
        print(f"  --limit {report.limit} reached: {report.left_by_limit} rows left unprocessed, as asked", file=err)
    stopped = report.interrupted or report.abort_reason or bool(counts.get(Outcome.UNPROCESSED.value))
    if stopped:
        print(f"  continue with: bulkstatus resume {folder}", file=err)
    if report.in_doubt:
        print(f"  in doubt: {report.in_doubt} rows were sent but their answer was lost; only resume settles them "
              "(it looks them up first), so they are not in retry.csv", file=err)
    if retry := report.redo.get("retry", 0):
        line = f"  retry as is: {folder / RETRY} ({retry} rows)"
        if not stopped:  # a stopped run's rest is resume's to do
            line += f"; run it again later: bulkstatus run {folder / RETRY}"
        print(line, file=err)
    if fix := report.redo.get("fix", 0):
        print(f"  fix first:   {folder / FIX} ({fix} rows); change what its fix column says, then "
              f"bulkstatus run {folder / FIX}", file=err)
    if counts.get(Outcome.PENDING_EXISTS.value):
        print(f"  pending-exists: {counts[Outcome.PENDING_EXISTS.value]} rows not sent, their customer already "
              "has a request with that label waiting for a checker (requestId in results.csv)", file=err)
    if job.dry_run:
        print(f"  dry run: nothing was sent; request bodies are in {folder / 'requests.jsonl'}", file=err)


def validate(args: argparse.Namespace) -> int:
    from bulkstatus.input.validation import render_json, render_text, validate_file

    settings = load_settings(args)
    path = Path(args.input)
    check_regular_file(path)
    report = validate_file(path, read_options(settings))
    print(render_json(report) if args.format == "json" else render_text(report))
    return ExitStatus.ROWS_FAILED if report.invalid else ExitStatus.OK


def sandbox(args: argparse.Namespace) -> int:
    from bulkstatus.cli.sandbox_serve import sandbox as serve_sandbox

    return serve_sandbox(args)
