"""Fixtures: a simulator on loopback, the sandbox credentials in the environment, the CLI in-process."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkstatus.cli import main
from bulkstatus.cli.sandbox import sandbox_config, sandbox_environment

sys.path.insert(0, str(Path(__file__).parent))
from simhelpers import SimulatorThread

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def folder(self) -> Path:
        """The run folder: the last line of stdout."""
        return Path(self.out.strip().splitlines()[-1])


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(sandbox_config()) as thread:
        yield thread


@pytest.fixture
def env(sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The sandbox credentials for ``sim`` in the environment; retries without waiting; output in tmp."""
    for name in list(__import__("os").environ):
        # A proxy of the machine the tests run on must not carry calls to the loopback simulator.
        if name.startswith("BULKSTATUS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)
    values = sandbox_environment(sim.url)
    values.update({
        "BULKSTATUS_BACKOFF": "0",
        "BULKSTATUS_DOUBT_SETTLE": "0",
        "BULKSTATUS_RATE": "0",
        "BULKSTATUS_OUT": str(tmp_path / "out"),
        "BULKSTATUS_LOCK_DIR": str(tmp_path / "locks"),  # this test's machine-wide locks
        "BULKSTATUS_REPORT": "false",  # 0.3 s a run; tests/test_report.py writes them
    })
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return values


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def invoke(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def write_csv(path: Path, rows: list[tuple[str, ...]] | list[list[str]],
              header: tuple[str, ...] = ("identifierName", "identifierValue", "label", "reason")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sandbox_secrets() -> list[str]:
    """Every secret the sandbox configures, and the Basic headers made from them."""
    from bulkstatus.api.bodies import basic_authorization
    from bulkstatus.sim import config as c

    return [c.SANDBOX_MAKER_TOKEN, c.SANDBOX_API_PASSWORD, c.SANDBOX_INTOUCH_PASSWORD, c.SANDBOX_OAUTH_SECRET,
            basic_authorization(c.SANDBOX_API_USER, c.SANDBOX_API_PASSWORD).split()[1],
            basic_authorization(c.SANDBOX_INTOUCH_USER, c.SANDBOX_INTOUCH_PASSWORD).split()[1]]


def assert_no_secrets(folder: Path, *texts: str, secrets: list[str] | None = None) -> None:
    """No secret in any file of the run folder, nor in the given texts (stdout, stderr)."""
    secrets = secrets if secrets is not None else sandbox_secrets()
    contents = list(texts) + [p.read_text(errors="replace") for p in folder.iterdir() if p.is_file()]
    for secret in secrets:
        assert not any(secret in text for text in contents), "a secret reached the output"
