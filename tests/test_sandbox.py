"""The sandbox for a first run: its options, the docs' example bodies, its terminal, `run --sandbox` checks."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ROOT, write_csv
from docs_examples import (
    CREATE_ANSWER_200,
    CREATE_REQUEST,
    ERROR_8015,
    GATEWAY_BASIC,
    LIST_PAGINATION_KEYS,
    OAUTH_ANSWER,
    decision_request,
    shape,
)
from simhelpers import serving

from bulkstatus.cli.sandbox import parse_port, parse_rate_limit, parse_seconds, parse_share, sandbox_config
from bulkstatus.cli.sandbox_serve import Terminal, describe_tally
from bulkstatus.errors import ConfigError
from bulkstatus.sim import SANDBOX_CHECKER_TOKEN, SANDBOX_MAKER_TOKEN, SANDBOX_ORG_ID, Simulator
from bulkstatus.sim.faults import Faults
from bulkstatus.sim.monitor import Served, Tally

WORKFLOW = "/api_gateway/v2/request-workflow"
CREATE = f"{WORKFLOW}/CUSTOMER-STATUS-CHANGE"

# -- options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0.0), ("1", 1.0), ("0.05", 0.05), (" 0.5 ", 0.5), ("5%", 0.05), ("100%", 1.0), ("0%", 0.0),
    ("1.5", None), ("-0.1", None), ("x", None), ("", None), ("nan", None), ("inf", None), ("101%", None),
    ("5 %", 0.05), ("%", None),
])
def test_fault_rates_are_shares_from_0_to_1(text: str, expected: float | None) -> None:
    """A fault rate is 0..1 or N%; anything else is one line naming the flag and the forms it takes."""
    if expected is None:
        with pytest.raises(ConfigError) as raised:
            parse_share(text, "--error-rate")
        assert str(raised.value) == (f"--error-rate {text!r} is not a share of calls: use a number from 0 to 1 "
                                     "(0.05) or a percentage (5%)")
    else:
        assert parse_share(text, "--error-rate") == pytest.approx(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("15/s", (15, 1.0)), ("15", (15, 1.0)), ("100/min", (100, 60.0)), ("100/m", (100, 60.0)),
    ("0", None), ("0/s", None), (" 40/S ", (40, 1.0)),
    ("1.5/s", "error"), ("-1/s", "error"), ("10/h", "error"), ("fast", "error"), ("", "error"),
])
def test_rate_limit_takes_the_forms_of_rate(text: str, expected: tuple[int, float] | str | None) -> None:
    """--rate-limit is N/s, N/min or 0 (no limit), as --rate is; a bad one names the forms."""
    if expected == "error":
        with pytest.raises(ConfigError, match=r"^--rate-limit .* is not a rate: use N/s or N/min"):
            parse_rate_limit(text)
    else:
        assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(("parse", "text", "expected"), [
    (lambda t: parse_seconds(t, "--latency"), "0.3", 0.3),
    (lambda t: parse_seconds(t, "--latency"), "0", 0.0),
    (lambda t: parse_seconds(t, "--latency"), "-1", None),
    (lambda t: parse_seconds(t, "--latency"), "inf", None),
    (lambda t: parse_seconds(t, "--latency"), "soon", None),
    (parse_port, "0", 0), (parse_port, "8080", 8080), (parse_port, "65536", None), (parse_port, "http", None),
])
def test_seconds_and_port(parse: Any, text: str, expected: float | None) -> None:
    """--latency and --report-every are seconds from 0, --port 0..65535; else one line naming the flag."""
    if expected is None:
        with pytest.raises(ConfigError, match=r"^--(latency|port) "):
            parse(text)
    else:
        assert parse(text) == expected


@pytest.mark.parametrize("args", [
    ["--error-rate", "1.5"], ["--error-rate", "-1"], ["--rate-limit", "fast"], ["--latency", "x"],
    ["--port", "-3"], ["--report-every", "-1"],
])
def test_bad_sandbox_option_is_one_line_exit_2(cli: Any, args: list[str]) -> None:
    """`bulkstatus sandbox` with a bad option: exit 2, one line on stderr, nothing served."""
    result = cli("sandbox", *args)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("bulkstatus: error: --") and result.err.count("\n") == 1


def test_per_minute_limit_is_a_sliding_minute() -> None:
    """100/min lets a burst of 100 through, refuses the 101st, and admits again once the first is a minute old."""
    now = [0.0]
    faults = Faults(1, lambda: now[0])
    assert [faults.admit(100, 60.0) for _ in range(101)].count(True) == 100
    now[0] = 59.9
    assert not faults.admit(100, 60.0)
    now[0] = 60.0  # the burst of t=0 has left the window, all at once
    assert [faults.admit(100, 60.0) for _ in range(101)].count(True) == 100


def test_summary_names_each_kind_and_outcome() -> None:
    """The summary's text: kinds in a fixed order, outcomes most common first; all-ok kinds by count alone."""
    counts = Counter({("list", "ok"): 2, ("create", "accepted"): 480, ("create", "rate-limited"): 20,
                      ("decide", "refused"): 3, ("decide", "ok"): 5, ("create", "refused"): 2})
    assert describe_tally(Tally(counts, 5.0)) == (
        "create 502 (accepted 480, rate-limited 20, refused 2); decide 8 (ok 5, refused 3); list 2")
    assert describe_tally(Tally(Counter(), 5.0)) == "no calls"


# -- the docs' example bodies over real HTTP ------------------------------------------------------------


def sandbox_session() -> AbstractAsyncContextManager[tuple[Simulator, aiohttp.ClientSession]]:
    return serving(sandbox_config())


def headers(token: str = SANDBOX_MAKER_TOKEN, gateway: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-CAP-API-AUTH-ORG-ID": SANDBOX_ORG_ID, "X-CAP-UI-AUTH-TOKEN": token, "Accept": "application/json",
            **(gateway if gateway is not None else {"Authorization": GATEWAY_BASIC})}


async def call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None,
               **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, path, json=body, **kwargs) as resp:
        return resp.status, await resp.json()


def with_method(method: str) -> dict[str, Any]:
    body = json.loads(json.dumps(CREATE_REQUEST))
    body["payload"]["IntouchAPITask-Payload"]["method"] = method
    return body


def test_docs_example_bodies_are_accepted_and_answered_in_the_documented_shapes() -> None:
    """Each example body of the docs, POSTed as printed (its gateway Basic header too), gets the documented
    answer's shape: create (method POST as the example, and PUT as the answers), get, list, decide, OAuth,
    and the v2 error; a POST request approved ends `failed` (the inner API is PUT), a PUT one `approved`."""

    async def scenario() -> None:
        async with sandbox_session() as (_, session):
            status, created = await call(session, "POST", CREATE, CREATE_REQUEST, headers=headers())
            assert status == 200, created
            assert shape(created) == shape(CREATE_ANSWER_200)
            assert created["data"]["details"]["IntouchAPITask-Payload"] == CREATE_REQUEST["payload"][
                "IntouchAPITask-Payload"]
            status, as_answered = await call(session, "POST", CREATE, with_method("PUT"), headers=headers())
            assert status == 200 and shape(as_answered) == shape(CREATE_ANSWER_200)

            post_id, put_id = created["data"]["requestId"], as_answered["data"]["requestId"]
            status, one = await call(session, "GET", f"{WORKFLOW}/requests/{post_id}", headers=headers())
            assert status == 200 and shape(one) == shape(CREATE_ANSWER_200)

            query = {"requestType": "CUSTOMER-STATUS-CHANGE", "states": "AdminTask,approved", "sortBy": "startDate",
                     "sortOrder": "desc", "limit": "1", "PageNo": "1", "tillId": "50682289"}
            status, page = await call(session, "GET", f"{WORKFLOW}/requests", headers=headers(), params=query)
            assert status == 200 and set(page) == {"data", "pagination"}
            assert set(page["pagination"]) == LIST_PAGINATION_KEYS and page["pagination"]["totalElements"] == 2
            assert [r["requestId"] for r in page["data"]] == [post_id]  # newest first: page 1 is the first made
            assert shape(page["data"][0]) == shape(CREATE_ANSWER_200["data"])

            checker = headers(SANDBOX_CHECKER_TOKEN)
            decided = {}
            for request_id in (post_id, put_id):
                status, answer = await call(session, "PUT", CREATE, decision_request(request_id, "approved"),
                                            headers=checker)
                assert status == 200 and set(answer["data"]) == set(CREATE_ANSWER_200["data"])
                decided[request_id] = answer["data"]["state"]
            assert decided == {post_id: "failed", put_id: "approved"}
            _, rejected = await call(session, "POST", CREATE, with_method("PUT"), headers=headers())
            status, answer = await call(session, "PUT", CREATE,
                                        decision_request(rejected["data"]["requestId"], "rejected"), headers=checker)
            assert (status, answer["data"]["state"]) == (200, "rejected")

            status, token = await call(session, "POST", "/v3/oauth/token/generate",
                                       {"key": "sandbox-key", "secret": "sandbox-secret"})
            assert status == 200 and shape(token) == shape(OAUTH_ANSWER)
            oauth = {"X-CAP-API-OAUTH-TOKEN": token["data"]["accessToken"]}
            status, _ = await call(session, "POST", CREATE, CREATE_REQUEST, headers=headers(gateway=oauth))
            assert status == 200

            unknown = with_method("PUT")
            unknown["payload"]["IntouchAPITask-Payload"]["queryParams"]["identifierValue"] = "919999999999"
            status, error = await call(session, "POST", CREATE, unknown, headers=headers())
            assert (status, error) == (400, ERROR_8015)

    asyncio.run(scenario())


def test_received_calls_are_listed_a_page_at_a_time() -> None:
    """/__sim/received pages every create received, refused ones too, like the API's list (newest first)."""

    async def scenario() -> None:
        async with sandbox_session() as (_, session):
            for value in ("919780375690", "919999999999", "919780375691"):
                body = with_method("PUT")
                body["payload"]["IntouchAPITask-Payload"]["queryParams"]["identifierValue"] = value
                await call(session, "POST", CREATE, body, headers=headers())
            _, first = await call(session, "GET", "/__sim/received", params={"limit": "2"})
            _, second = await call(session, "GET", "/__sim/received", params={"limit": "2", "PageNo": "1"})
            _, oldest = await call(session, "GET", "/__sim/received", params={"limit": "1", "sortOrder": "asc"})
            status, bad = await call(session, "GET", "/__sim/received", params={"limit": "501"})
        assert [(c["number"], c["identifierValue"], c["outcome"], c["errorCode"]) for c in first["data"]] == [
            (3, "919780375691", "accepted", None), (2, "919999999999", "rejected", 8015)]
        assert first["pagination"] == {"totalElements": 3, "totalPages": 2, "numberOfElements": 2, "number": 0}
        assert [c["number"] for c in second["data"]] == [1] and [c["number"] for c in oldest["data"]] == [1]
        assert "Authorization" not in json.dumps(first) and SANDBOX_MAKER_TOKEN not in json.dumps(first)
        assert (status, bad) == (400, {"error": "limit must be between 1 and 500"})

    asyncio.run(scenario())


# -- run --sandbox checks its settings like a real run --------------------------------------------------


@pytest.mark.parametrize(("flag", "message"), [
    (("--concurrency", "0"), "bulkstatus: error: --concurrency must be at least 1\n"),
    (("--list-limit", "0"), "bulkstatus: error: --list-limit must be at least 1\n"),
])
def test_run_sandbox_refuses_a_setting_a_real_run_refuses(cli: Any, env: dict[str, str], sim: Any,
                                                        tmp_path: Path, flag: tuple[str, str], message: str) -> None:
    """`run --sandbox` with a setting a real run refuses: the same one line, exit 2, nothing sent."""
    path = ROOT / "samples" / "customers.csv"
    real = cli("run", *flag, path)
    sandboxed = cli("run", "--sandbox", *flag, path)
    assert (real.code, sandboxed.code) == (2, 2)
    assert sandboxed.err == real.err == message
    assert sim.sim.state.stats()["create_calls"] == 0 and not (tmp_path / "out").exists()


def test_resume_sandbox_refuses_a_bad_setting(cli: Any, env: dict[str, str], tmp_path: Path) -> None:
    """`resume --sandbox --concurrency 0` of an unfinished run is refused like a real resume: one line, exit 2."""
    path = write_csv(tmp_path / "one.csv", [("mobile", "919780375690", "Suspended", "x")])
    first = cli("run", "--sandbox", path)
    assert first.code == 0, first.err
    manifest = json.loads((first.folder / "run.json").read_text())
    manifest["status"] = "running"
    (first.folder / "run.json").write_text(json.dumps(manifest))
    result = cli("resume", "--sandbox", "--concurrency", "0", first.folder)
    assert (result.code, result.err) == (2, "bulkstatus: error: --concurrency must be at least 1\n")


# -- the terminal of `bulkstatus sandbox` ----------------------------------------------------------------


class Sandbox:
    """`bulkstatus sandbox` as a subprocess; `lines` receives its stderr as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bulkstatus", "sandbox", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.url = self.proc.stdout.readline().strip()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str) -> str:
        """The next stderr line holding `text` (each line seen is kept in `seen`)."""
        while True:
            line = self.lines.get(timeout=10)
            assert line is not None, f"the sandbox ended before saying {text!r}: {self.seen}"
            self.seen.append(line)
            if text in line:
                return line

    def stop(self) -> list[str]:
        """Ctrl-C, and every line said until it ended."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.seen

    def post(self, value: str) -> int:
        body = with_method("PUT")
        body["payload"]["IntouchAPITask-Payload"]["queryParams"]["identifierValue"] = value
        request = urllib.request.Request(self.url + CREATE, json.dumps(body).encode(), method="POST",
                                         headers={**headers(), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def test_sandbox_terminal_summarises_and_names_refusals() -> None:
    """`bulkstatus sandbox` prints a summary line per interval in which it served, a line per refused call
    (the customer not found), and the totals when stopped; never a header or a token."""
    sandbox = Sandbox("--report-every", "0.05")
    try:
        sandbox.wait_for("list what it received: curl")
        assert [sandbox.post("919780375690"), sandbox.post("ghost@example.com"), sandbox.post("919780375691")] == [
            200, 400, 200]
        refusal = sandbox.wait_for("refused")
        summary = sandbox.wait_for(": last ")
    finally:
        seen = sandbox.stop()
    assert refusal.startswith("sandbox ") and refusal.endswith(" ms)")
    assert "create mobile ghost@example.com -> 400 refused: 8015 Customer not found for the given identifiers" \
        in refusal
    assert " calls (" in summary and "requests held" in summary
    assert seen[-1].startswith("sandbox: stopped after ")
    assert seen[-1].endswith("3 calls served: create 3 (accepted 2, refused 1) | 2 requests held (AdminTask 2)")
    assert sandbox.proc.returncode == 0
    text = "\n".join(seen)
    assert "Traceback" not in text and GATEWAY_BASIC.split()[1] not in text
    assert not any(line.startswith("sandbox") and SANDBOX_MAKER_TOKEN in line for line in seen)


def test_sandbox_verbose_prints_a_line_per_call() -> None:
    """With --verbose every call gets its line, accepted ones too; without a summary interval, the totals."""
    sandbox = Sandbox("--verbose", "--report-every", "0")
    try:
        sandbox.wait_for("simulator listening on")
        assert sandbox.post("919780375690") == 200
        accepted = sandbox.wait_for("-> 200 accepted")
    finally:
        seen = sandbox.stop()
    assert "create mobile 919780375690 -> 200 accepted (" in accepted
    assert not any(": last " in line for line in seen)
    assert seen[-1].endswith("1 call served: create 1 (accepted 1) | 1 request held (AdminTask 1)")


def test_refusal_lines_are_capped_per_interval(capsys: pytest.CaptureFixture[str]) -> None:
    """At most 3 lines of one error and 10 in all per interval; the rest are counted for the summary."""
    terminal = Terminal(verbose=False, quiet=False)
    denied = Served("decide", 403, "refused", 0.0, "r", 4000, "Access denied")
    for _ in range(20):
        terminal.hear(denied)
    for n in range(12):
        terminal.hear(Served("create", 400, "refused", 0.0, f"mobile 9{n}", 8015, "Customer not found"))
    terminal.hear(Served("create", 200, "accepted", 0.0, "mobile 1"))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 and sum("Access denied" in line for line in lines) == 3
    assert terminal.new_interval() == 26
    terminal.hear(denied)
    assert len(capsys.readouterr().err.splitlines()) == 1
