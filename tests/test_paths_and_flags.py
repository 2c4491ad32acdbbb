"""Inputs that are not regular files are refused before anything opens them; flags are never abbreviated
and an unknown flag that may carry a secret is named without its value."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, write_csv

from bulkstatus.cli.parser import build_parser

SECRET = "hunter2"


def _one_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and not result.out, (result.code, result.out, result.err)
    return lines[0]


def _special_paths(tmp_path: Path) -> list[tuple[Path, str]]:
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    sock = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.close()
    return [(folder, "is a directory"), (fifo, "is a FIFO"), (sock, "is a socket"),
            (Path("/dev/zero"), "is a character device"), (Path("/dev/null"), "is a character device")]


@pytest.mark.timeout(10)
def test_special_paths_are_refused_before_anything_reads_them(sim, env, cli, tmp_path):
    """run and validate refuse a directory, FIFO, socket or device at once, exit 2, naming what it is;
    no thread is left reading it (a FIFO would block, /dev/zero never ends)."""
    before = set(threading.enumerate())
    for path, what in _special_paths(tmp_path):
        for args in (["run", path], ["run", "--sandbox", path], ["run", "--dry-run", path], ["validate", path]):
            line = _one_line(cli(*args))
            assert line.startswith(f"bulkstatus: error: {path} {what}"), line
            assert line.endswith("not a file: give a CSV file"), line
    assert set(threading.enumerate()) <= before
    missing = _one_line(cli("run", tmp_path / "missing.csv"))
    assert "does not exist" in missing
    assert sim.sim.state.stats()["create_calls"] == 0


@pytest.mark.timeout(20)
def test_dev_zero_as_a_user_types_it_exits_at_once(tmp_path):
    """The installed command, as a separate process: it used to spin at 100% CPU forever."""
    for path in ("/dev/zero", tmp_path):
        done = subprocess.run([sys.executable, "-m", "bulkstatus", "run", str(path), "--sandbox"],
                              capture_output=True, text=True, timeout=10, cwd=tmp_path)
        assert done.returncode == 2 and "not a file" in done.stderr, done.stderr


@pytest.mark.timeout(30)
def test_resume_refuses_an_input_that_became_a_fifo(sim, env, cli, tmp_path):
    path = write_csv(tmp_path / "r.csv", [("mobile", "919780375690", "Suspended", "x")])
    first = cli("run", path)
    assert first.code == 0, first.err
    manifest = first.folder / "run.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "status": "interrupted"}))
    path.unlink()
    os.mkfifo(path)
    line = _one_line(cli("resume", first.folder))
    assert f"{path} is a FIFO (named pipe), not a file: put the run's input file back to resume" in line
    path.unlink()
    assert "is gone" in _one_line(cli("resume", first.folder))


def test_secret_like_flags_are_named_without_their_value(sim, env, cli, tmp_path):
    good = write_csv(tmp_path / "g.csv", [("mobile", "919780375690", "Suspended", "x")])
    cases = [
        (["run", good, "--ui-token", SECRET], "unknown option --ui-token: secrets are never taken as flags; "
                                              "set BULKSTATUS_UI_TOKEN or use --ui-token-file"),
        (["run", "--ui-token", SECRET, good], "unknown option --ui-token: secrets"),
        (["--ui-token", SECRET, "run", good], "unknown option --ui-token: secrets"),
        (["run", good, f"--ui-token={SECRET}"], "unknown option --ui-token: secrets"),
        (["run", good, "--api-password", SECRET], "set BULKSTATUS_API_PASSWORD or use --api-password-file"),
        (["run", good, f"--oauth-secret={SECRET}"], "set BULKSTATUS_OAUTH_SECRET or use --oauth-secret-file"),
        (["run", good, "--api-key", SECRET], "unknown option --api-key: secrets are never taken as flags"),
        (["resume", "--intouch-password", SECRET, tmp_path], "set BULKSTATUS_INTOUCH_PASSWORD"),
        (["validate", good, "--ui-token", SECRET], "unknown option --ui-token: secrets"),
        (["track", tmp_path, f"--token={SECRET}"], "unknown option --token: secrets"),
        (["run", good, f"--concur={SECRET}"], "unknown option --concur (flags are never abbreviated)"),
        (["run", good, "--concur", SECRET], "did you mean --concurrency?"),
    ]
    for args, message in cases:
        result = cli(*args)
        line = _one_line(result)
        assert message in line, (args, line)
        assert SECRET not in result.err + result.out, (args, result.err)
    assert sim.sim.state.stats()["create_calls"] == 0


def test_no_flag_is_ever_abbreviated(sim, env, cli, tmp_path):
    """`--ui-token x` used to be taken as --ui-token-file; no parser or subparser accepts a prefix."""
    good = write_csv(tmp_path / "g.csv", [("mobile", "919780375690", "Suspended", "x")])
    for args, flag in ((["run", good, "--concur", "4"], "--concur"), (["run", good, "--dry"], "--dry"),
                       (["validate", good, "--form", "json"], "--form"), (["run", good, "--verb"], "--verb")):
        line = _one_line(cli(*args))
        assert line.startswith(f"bulkstatus: unknown option {flag} "), line
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    assert not parser.allow_abbrev and not any(p.allow_abbrev for p in subparsers.values())
    # the flags spelt out in full still work
    assert cli("validate", good, "--format", "json").code == 0
    result = cli("run", "--sandbox", "--rate", "0", "--concurrency", "4", "--quiet", ROOT / "samples" / "customers.csv")
    assert result.code == 0, result.err
