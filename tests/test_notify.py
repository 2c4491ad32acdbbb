"""--notify: the message and the URL forms as tables; delivery through the CLI to a local aiohttp listener."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import sandbox_secrets, write_csv
from simhelpers import LoopThread

from bulkstatus.errors import ConfigError
from bulkstatus.notify import parse_urls, redact_url, summary_text, url_secrets
from bulkstatus.settings import resolve

TOKEN_PATH = "/services/T000/B000/sEcReTwEbHoOkToKeN"  # a Slack-like webhook path: itself a secret


class Listener(LoopThread):
    """An aiohttp server that records each POST's JSON and answers ``status`` (None: never answers)."""

    def __init__(self, status: int | None = 200) -> None:
        super().__init__("listener")
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._never = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path_qs)
        self.received.append(await request.json())
        if self.status is None:
            await self._never.wait()  # cancelled when the listener stops
        return web.Response(status=self.status or 200, text="ok")

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        self._never.set()
        await self._runner.cleanup()


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.slack.com/services/T0/B0/xyz", "https://hooks.slack.com"),
    ("http://user:pw@127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080"),
    ("https://[::1]:9000/x", "https://[::1]:9000"),
    ("https://example.com", "https://example.com"),
    ("http://host:port/x", "(a URL that cannot be parsed)"),
])
def test_a_url_is_shown_as_scheme_and_host_only(url, shown):
    """No user, password, path or query is ever shown."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(("value", "urls"), [
    ("https://a.example/x", ("https://a.example/x",)),
    ("https://a.example/x  https://b.example/y?a=1,2\n", ("https://a.example/x", "https://b.example/y?a=1,2")),
    (["https://a.example/x", "https://a.example/x"], ("https://a.example/x",)),  # each URL once
    ("", ()),
])
def test_url_forms(value, urls):
    """A list (repeated flag, TOML array) or one string separated by white space (commas stay in a URL)."""
    assert parse_urls(value) == urls


@pytest.mark.parametrize("value", ["ftp://a.example/x", "hooks.slack.com/services/x", "https:///x", 5,
                                   "http://host:port/x"])
def test_bad_urls_are_refused_without_their_path(value):
    """One line that shows at most scheme://host."""
    with pytest.raises(ConfigError, match=r"http://|must be a URL") as caught:
        parse_urls(value)
    assert "/x" not in str(caught.value) and "services" not in str(caught.value)


@pytest.mark.parametrize(("url", "secrets"), [
    ("https://hooks.slack.com/services/T0/B0/xyz", ["/services/T0/B0/xyz"]),
    ("http://u:pass1@h.example/hook?k=v", ["/hook?k=v", "pass1"]),
    ("https://h.example", []), ("https://h.example/", []),
])
def test_what_of_a_url_is_masked_in_logs(url, secrets):
    """Its path and query and a password, never scheme://host (which is what the log shows)."""
    assert url_secrets(url) == secrets


def test_notify_setting_sources(tmp_path):
    """Flag (repeated) > BULKSTATUS_NOTIFY (white space) > config (a TOML array or a string)."""
    config = tmp_path / "bulkstatus.toml"
    config.write_text('[default]\nnotify = ["https://c.example/1", "https://c.example/2"]\n')
    env = {"BULKSTATUS_NOTIFY": "https://e.example/1 https://e.example/2"}
    assert resolve({}, {}, config).get("notify") == ("https://c.example/1", "https://c.example/2")
    assert resolve({}, env, config).get("notify") == ("https://e.example/1", "https://e.example/2")
    assert resolve({"notify": ["https://f.example/1"]}, env, config).get("notify") == ("https://f.example/1",)
    assert resolve({}, {}).get("notify") is None
    public = resolve({}, env).public()
    assert public["notify"] == ["https://e.example", "https://e.example"] and public["notify-timeout"] == 10.0


@pytest.mark.parametrize(("message", "text"), [
    ({"command": "run", "folder": "out/a-1", "host": "cron1", "status": "finished", "exitCode": 0,
      "input": {"path": "/data/a.csv"}, "counts": {"submitted": 1200, "failed": 0}, "rows": 1200,
      "requestsStarted": 1200, "durationSeconds": 61.25},
     "bulkstatus run of a.csv on cron1: finished, exit 0. 1,200 rows: submitted 1,200. 1,200 requests in 61.2 s "
     "(over every session). Run folder: out/a-1."),
    ({"command": "resume", "folder": "out/a-1", "status": "aborted", "exitCode": 3, "input": {"path": "a.csv"},
      "counts": {"failed": 6, "unprocessed": 94}, "rows": 100, "abortReason": "--max-failures 5: ..."},
     "bulkstatus resume of a.csv: aborted, exit 3. 100 rows: failed 6, unprocessed 94. Stopped: --max-failures 5: "
     ".... Run folder: out/a-1. Continue with: bulkstatus resume out/a-1"),
    ({"command": "run", "folder": "out/a-1", "status": "interrupted", "exitCode": 130},
     "bulkstatus run: interrupted, exit 130; stopped at once, so its files say how far it got. Continue with: "
     "bulkstatus resume out/a-1"),
    ({"command": "track", "folder": "out/a-1", "exitCode": 4,
      "tracking": {"requests": 3, "counts": {"AdminTask": 1, "approved": 2}}},
     "bulkstatus track: exit 4; 3 requests: AdminTask 1, approved 2. Run folder: out/a-1."),
])
def test_summary_text(message, text):
    """One paragraph a person reads in a chat channel."""
    assert summary_text(message) == text


def _rows(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "in.csv", [("mobile", f"91900000{i:04d}", "Suspended", "fraud") for i in range(5)]
                     + [("mobile", "919999999999", "Suspended", "fraud")])  # not found in the sandbox


def test_a_run_posts_its_summary(sim, env, cli, tmp_path):
    """The JSON arrives once with the summary, folder, status, exit code and text; no secret, no URL path."""
    with Listener() as listener:
        result = cli("run", _rows(tmp_path), "--notify", listener.url + TOKEN_PATH)
    assert result.code == 1, result.err
    assert listener.paths == [TOKEN_PATH]
    [message] = listener.received
    assert message["command"] == "run" and message["status"] == "finished" and message["exitCode"] == 1
    assert message["folder"] == str(result.folder) and message["counts"]["submitted"] == 5
    assert message["counts"]["failed"] == 1 and message["input"]["sha256"]
    assert message["text"].startswith("bulkstatus run of in.csv") and "exit 1" in message["text"]
    assert message["settings"]["notify"] == [listener.url]
    for secret in sandbox_secrets():
        assert secret not in json.dumps(message)
    assert f"notify: delivered to {listener.url} (HTTP 200)" in result.err
    run_log = (result.folder / "run.log").read_text()
    assert "notify: delivered" in run_log
    for text in (result.err, result.out, run_log, (result.folder / "summary.json").read_text(),
                 (result.folder / "run.json").read_text()):
        assert "sEcReT" not in text


@pytest.mark.parametrize(("status", "attempts", "detail"), [(500, 3, "HTTP 500"), (404, 1, "HTTP 404"),
                                                             (None, 1, "no answer within 0.5 s")])
def test_a_failed_notification_changes_nothing(sim, env, cli, tmp_path, status, attempts, detail):
    """500 (tried 3 times), 404 (once) or no answer (bounded by --notify-timeout): a warning, same exit."""
    with Listener(status) as listener:
        started = time.monotonic()
        result = cli("run", _rows(tmp_path), "--notify", listener.url + TOKEN_PATH, "--notify-timeout", "0.5")
        took = time.monotonic() - started
    assert result.code == 1, result.err
    assert len(listener.received) == attempts
    warnings = [line for line in result.err.splitlines() if "notify:" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert warnings[0].endswith(f"notify: not delivered to {listener.url} after {attempts} attempt(s) "
                                f"({detail}); the run's exit status is unchanged")
    assert took < 5
    assert "sEcReT" not in result.err


def test_resume_and_track_notify_too(sim, env, cli, tmp_path, monkeypatch):
    """BULKSTATUS_NOTIFY reaches resume and track; track's message carries the tracking counts."""
    with Listener() as listener:
        monkeypatch.setenv("BULKSTATUS_NOTIFY", listener.url + TOKEN_PATH)
        first = cli("run", _rows(tmp_path), "--limit", "2")
        assert first.code == 0, first.err
        second = cli("resume", first.folder)
        track = cli("track", first.folder)
    assert second.code == 1 and track.code == 4, track.err
    assert [m["command"] for m in listener.received] == ["run", "resume", "track"]
    assert [m["status"] for m in listener.received] == ["incomplete", "finished", "some-pending"]
    assert listener.received[2]["tracking"]["counts"] == {"AdminTask": 5}
    assert listener.received[2]["text"].endswith(f"5 requests: AdminTask 5. Run folder: {first.folder}.")


def test_a_bad_notify_url_is_a_usage_error(sim, env, cli, tmp_path):
    """Exit 2 before anything is sent, without the URL's path."""
    result = cli("run", _rows(tmp_path), "--notify", "hooks.example.com" + TOKEN_PATH)
    assert result.code == 2
    assert result.err == ("bulkstatus: error: --notify: a value does not start with https:// or http:// (not "
                          "shown: it may hold a token): give the webhook's whole URL\n")
    assert "sEcReT" not in result.err and sim.sim.state.create_calls == 0
