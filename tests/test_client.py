"""The aiohttp HTTP layer (bulkstatus/api/client.py) over real sockets on loopback, and through the CLI:
no resend on a broken kept-alive connection, "not sent" against "in doubt", proxies from the environment,
TLS with a private CA, and a UI token file rotated while the run waits for it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import trustme
from aiohttp import web
from conftest import CliResult, assert_no_secrets, read_csv, write_csv
from multidict import CIMultiDict, CIMultiDictProxy
from proxyserver import ProxyThread
from simhelpers import LoopThread, SimulatorThread
from yarl import URL

from bulkstatus.api import auth
from bulkstatus.api.client import HttpClient, NoAnswer, env_proxy
from bulkstatus.cli.sandbox import sandbox_config
from bulkstatus.sim import Simulator
from bulkstatus.sim import config as simcfg

Cli = Callable[..., CliResult]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                   "http_proxy", "https_proxy", "no_proxy", "all_proxy", "REQUEST_METHOD")
JSON_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(
    {"Content-Type": "application/json", "Accept": "application/json"}))
BODY = b'{"requestId": "r-1", "status": "APPROVED"}'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n"
      b'{"data": {"n": 1}}')


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell running the tests exports, no proxy variable applies unless a test sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run_async(test: Awaitable[None], timeout: float = 5.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(test, timeout)

    asyncio.run(main())


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound, never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


# -- a scripted raw HTTP server ------------------------------------------------------------------------

class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 scripted per connection by ``mode``:

    - ``drop-second``: answers the first request of a connection (kept alive), then reads the second in
      full, counts it and closes the connection without answering;
    - ``close-at-once``: closes each connection as soon as it is accepted, before reading anything;
    - ``read-and-close``: reads a request in full, counts it, closes without answering;
    - ``read-and-hang``: reads a request in full, counts it, never answers.

    ``requests`` counts requests read in full, ``connections`` the connections accepted.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.connections = 0
        self.url = URL()
        self._open: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = URL(f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in list(self._open):
            writer.close()  # its handler reads the end of the stream and returns
        if self._open:
            await asyncio.wait(list(self._open.values()), timeout=2)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        self.connections += 1
        try:
            served = 0
            while self.mode != "close-at-once" and await read_request(reader):
                self.requests += 1
                served += 1
                if self.mode == "read-and-close" or (self.mode == "drop-second" and served == 2):
                    break
                if self.mode == "read-and-hang":
                    await reader.read()  # until the client gives up and goes away
                    break
                writer.write(OK)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._open.pop(writer, None)


async def read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and Content-Length body); False at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return False
        raise
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return True


# -- 1. no resend on a broken kept-alive connection ----------------------------------------------------

@pytest.mark.parametrize("method", ["PUT", "POST", "GET"])
def test_broken_keepalive_connection_is_never_resent(method: str) -> None:
    """A kept-alive connection closed after the server read the request: NoAnswer(sent), no second copy."""
    body = BODY if method != "GET" else None

    async def scenario() -> None:
        async with RawServer("drop-second") as server:
            client = HttpClient(limit=1, timeout=5)
            try:
                first = await client.request(method, server.url / "v3/requests", JSON_HEADERS, body)
                assert (first.status, first.data) == (200, {"data": {"n": 1}})
                with pytest.raises(NoAnswer) as caught:
                    await client.request(method, server.url / "v3/requests", JSON_HEADERS, body)
            finally:
                await client.close()
            assert caught.value.sent is True and caught.value.cause == "network"
            assert server.connections == 1  # the second request did go over the kept-alive connection
            assert server.requests == 2  # and aiohttp did not send it again on a new one

    run_async(scenario())


def test_the_drop_server_does_catch_aiohttps_own_resend() -> None:
    """Control: a default aiohttp session sends the PUT again on a new connection (3 requests counted)."""

    async def scenario() -> None:
        async with RawServer("drop-second") as server, aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.put(server.url / "x", data=BODY) as response:
                    assert response.status == 200
            assert (server.requests, server.connections) == (3, 2)

    run_async(scenario())


# -- 2. not sent against in doubt -----------------------------------------------------------------------

async def one_call(url: URL, timeout: float = 5.0, times: int = 1) -> list[NoAnswer]:
    """POST ``times`` requests to ``url`` with one client, each of which must get no answer."""
    client = HttpClient(limit=1, timeout=timeout)
    failures = []
    try:
        for _ in range(times):
            with pytest.raises(NoAnswer) as caught:
                await client.request("POST", url, JSON_HEADERS, BODY)
            failures.append(caught.value)
    finally:
        await client.close()
    return failures


def test_refused_connection_is_not_sent() -> None:
    """A closed port: NoAnswer with sent=False (safe to send again), cause network."""

    async def scenario() -> None:
        with closed_port() as port:
            [failure] = await one_call(URL(f"http://127.0.0.1:{port}/v3/requests"))
        assert (failure.sent, failure.cause) == (False, "network")
        assert f"127.0.0.1:{port}" in failure.kind

    run_async(scenario())


def test_connection_closed_before_the_server_read_is_in_doubt() -> None:
    """Accepted and closed unread: the client cannot tell it was unread, so it is in doubt (sent=True)."""

    async def scenario() -> None:
        async with RawServer("close-at-once") as server:
            # the same verdict whichever of the close and the write comes first
            failures = await one_call(server.url / "v3/requests", times=50)
            assert {(f.sent, f.cause) for f in failures} == {(True, "network")}
            assert server.requests == 0 and server.connections == 50

    run_async(scenario())


def test_request_read_then_connection_closed_is_in_doubt() -> None:
    """The server read the whole request and closed without answering: NoAnswer with sent=True."""

    async def scenario() -> None:
        async with RawServer("read-and-close") as server:
            [failure] = await one_call(server.url / "v3/requests")
            assert (failure.sent, failure.cause) == (True, "network")
            assert server.requests == 1

    run_async(scenario())


def test_request_read_and_never_answered_times_out_in_doubt() -> None:
    """The server read the request and never answers: after the 0.3 s timeout, sent=True, cause timeout."""

    async def scenario() -> None:
        async with RawServer("read-and-hang") as server:
            started = time.monotonic()
            [failure] = await one_call(server.url / "v3/requests", timeout=0.3)
            elapsed = time.monotonic() - started
            assert (failure.sent, failure.cause) == (True, "timeout")
            assert server.requests == 1
            assert 0.25 <= elapsed < 1.5

    run_async(scenario())


# -- 3. proxies from the environment ---------------------------------------------------------------------

PROXY = "http://proxy.example:3128"
API = "http://127.0.0.1:8080/v3/requests"


@pytest.mark.parametrize("variables,url,expected", [
    ({"HTTP_PROXY": PROXY}, API, PROXY),
    ({"http_proxy": PROXY}, API, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, API, None),
    ({"HTTP_PROXY": PROXY, "no_proxy": "127.0.0.1"}, API, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "other.example, 127.0.0.1"}, API, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "*"}, API, None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "other.example"}, API, PROXY),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "capillarytech.com"}, "http://eu.api.capillarytech.com/x", None),
    ({"HTTPS_PROXY": PROXY}, API, None),
    ({"HTTPS_PROXY": PROXY}, "https://eu.api.capillarytech.com/v3", PROXY),
    ({"HTTP_PROXY": PROXY}, "https://eu.api.capillarytech.com/v3", None),
    ({"HTTP_PROXY": "http://upper.example:1", "http_proxy": "http://lower.example:2"}, API,
     "http://lower.example:2"),
    ({"HTTP_PROXY": PROXY, "http_proxy": ""}, API, None),
    ({"HTTP_PROXY": "proxy.example:3128"}, API, PROXY),
    ({"HTTP_PROXY": "http://user:pw@proxy.example:3128"}, API, "http://user:pw@proxy.example:3128"),
    ({"ALL_PROXY": PROXY}, API, None),
    ({}, API, None),
])
def test_env_proxy_table(variables: dict[str, str], url: str, expected: str | None,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """env_proxy: the scheme's variable, NO_PROXY bypass, lower case wins, ALL_PROXY is not read."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    found = env_proxy(url)
    assert (str(found) if found is not None else None) == expected


def test_proxy_is_resolved_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """HttpClient.proxy_for reads the environment on an origin's first use only; use_proxy_env=False: none."""
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    client = HttpClient(limit=1, timeout=1)
    assert str(client.proxy_for(URL(API))) == PROXY
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert str(client.proxy_for(URL(API + "/other"))) == PROXY  # same origin: the first answer holds
    assert client.proxy_for(URL("http://127.0.0.1:9090/x")) is None  # a new origin reads it again
    assert HttpClient(limit=1, timeout=1, use_proxy_env=False).proxy_for(URL("http://api.example/x")) is None


ROWS: list[tuple[str, ...]] = [("mobile", "919800000001", "Suspended", "proxy"),
                               ("mobile", "919800000002", "Suspended", "proxy"),
                               ("email", "proxied@example.com", "Suspended", "proxy")]


def rows(n: int) -> list[tuple[str, ...]]:
    """``n`` valid rows for distinct customers."""
    return [("mobile", f"91980{i:07d}", "Suspended", f"rotation {i}") for i in range(n)]


def api_calls(sim: SimulatorThread) -> Counter[str]:
    stats = sim.sim.state.stats()
    return Counter({"POST": stats["create_calls"], "GET": stats["list_calls"] + stats["get_calls"]})


def test_run_goes_through_http_proxy(sim: SimulatorThread, env: dict[str, str], cli: Cli, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY: every call of a run (the pending-check list and each create) goes through the proxy."""
    path = write_csv(tmp_path / "p.csv", ROWS)
    with ProxyThread() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = cli("run", path)
    assert result.code == 0, result.err
    calls = api_calls(sim)
    assert calls["POST"] == 3 and calls["GET"] >= 1
    assert Counter(method for method, _ in proxy.seen) == calls
    assert all(url.startswith(sim.url + "/") for _, url in proxy.seen)
    assert any("/requests?" in url for method, url in proxy.seen if method == "GET")  # the pending check
    assert {r["outcome"] for r in read_csv(result.folder / "results.csv")} == {"submitted"}


def test_through_a_proxy_every_request_has_its_own_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy no connection is reused, so a proxy that closes after each answer loses nothing."""

    async def scenario() -> None:
        async with RawServer("drop-second") as proxy:  # answers once per connection, drops a second request
            monkeypatch.setenv("HTTP_PROXY", str(proxy.url))
            client = HttpClient(limit=1, timeout=5)
            try:
                for _ in range(3):
                    answer = await client.request("POST", URL("http://api.example/v3/x"), JSON_HEADERS, BODY)
                    assert answer.status == 200
            finally:
                await client.close()
            assert (proxy.connections, proxy.requests) == (3, 3)

    run_async(scenario())


class LateClosingProxy(ProxyThread):
    """A proxy that serves one request per connection and closes it unannounced, as tinyproxy does, with the
    close reaching the client only after it wrote its next request into that connection (the race lost every time).
    ``dropped`` counts the requests lost so."""

    def __init__(self) -> None:
        super().__init__(one_per_connection=True)
        self.dropped = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        try:
            await self._one(reader, writer)
            if await read_request(reader):
                self.dropped += 1
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._open.pop(writer, None)
            writer.close()


def test_proxy_that_closes_after_each_answer_costs_no_lookups(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that closes each connection after one answer (tinyproxy): no lost answers, retries or look-ups."""
    data = rows(6)
    proxy = LateClosingProxy()
    with proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = cli("run", "--concurrency", "1", "--max-retries", "2", write_csv(tmp_path / "tiny.csv", data))
    summary = json.loads((result.folder / "summary.json").read_text())
    assert (proxy.dropped, summary["retries"], summary["lookupCalls"]) == (0, 0, 0)
    assert result.code == 0, result.err
    assert Counter(m for m, _ in proxy.seen) == api_calls(sim) and api_calls(sim)["POST"] == len(data)


def test_no_proxy_bypasses_the_proxy(sim: SimulatorThread, env: dict[str, str], cli: Cli, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY=127.0.0.1: the run talks to the API directly, the proxy sees nothing."""
    path = write_csv(tmp_path / "n.csv", ROWS)
    with ProxyThread() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = cli("run", path)
    assert result.code == 0, result.err
    assert proxy.seen == [] and api_calls(sim)["POST"] == 3


def aborted_lines(result: CliResult) -> list[str]:
    """The lines of stderr that say why the run stopped (the summary's, or the CLI's own)."""
    return [line.strip() for line in result.err.splitlines()
            if line.strip().startswith(("ABORTED: ", "bulkstatus: aborted: ", "bulkstatus: error: "))]


def test_unreachable_proxy_aborts_with_one_line(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY at a closed port: exit 3, one line naming the proxy, no traceback, nothing sent."""
    path = write_csv(tmp_path / "u.csv", ROWS)
    with closed_port() as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        result = cli("run", path)
    assert result.code == 3, result.err
    [line] = aborted_lines(result)
    assert f"proxy http://127.0.0.1:{port}" in line
    assert [x.strip() for x in result.err.splitlines() if f"127.0.0.1:{port}" in x] == [line]  # said once
    assert "HTTP_PROXY" in line
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert sum(api_calls(sim).values()) == 0
    assert {r["outcome"] for r in read_csv(result.folder / "results.csv")} == {"unprocessed"}


PROXY_USER, PROXY_PASSWORD = "tester", "pr0xy-s3cret@pw"
PROXY_USERINFO = f"{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}"  # as it is written in a URL
PROXY_AUTH = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
PROXY_SECRETS = [PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), PROXY_AUTH.split()[1]]


def test_proxy_credentials_are_used_and_never_printed(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """user:password in the proxy URL authenticate to the proxy and reach no output, even with --verbose."""
    path = write_csv(tmp_path / "a.csv", ROWS)
    with ProxyThread(auth=PROXY_AUTH) as proxy:
        host = proxy.url.removeprefix("http://")
        monkeypatch.setenv("HTTP_PROXY", f"http://{PROXY_USERINFO}@{host}")
        result = cli("run", "--verbose", path)
    assert result.code == 0, result.err
    assert proxy.refused == [] and Counter(m for m, _ in proxy.seen) == api_calls(sim)
    assert_no_secrets(result.folder, result.out, result.err, secrets=PROXY_SECRETS)


def test_proxy_password_not_printed_when_the_proxy_fails(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that is unreachable, or refuses the credentials (407): exit 3, the line shows no password."""
    path = write_csv(tmp_path / "f.csv", ROWS)
    with closed_port() as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://{PROXY_USERINFO}@127.0.0.1:{port}")
        unreachable = cli("run", "--verbose", path)
    assert unreachable.code == 3, unreachable.err
    [line] = aborted_lines(unreachable)
    assert f"proxy http://127.0.0.1:{port}" in line and PROXY_USER not in line
    assert_no_secrets(unreachable.folder, unreachable.out, unreachable.err, secrets=PROXY_SECRETS)
    with ProxyThread(auth="Basic " + base64.b64encode(b"tester:another").decode()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{PROXY_USERINFO}@{proxy.url.removeprefix('http://')}")
        refused = cli("run", "--verbose", "--new-run", path)
    assert refused.code == 3, refused.err
    [line] = aborted_lines(refused)
    assert "407" in line and proxy.refused and proxy.seen == []
    assert_no_secrets(refused.folder, refused.out, refused.err, secrets=PROXY_SECRETS)
    assert sum(api_calls(sim).values()) == 0


# -- 4. TLS with a private certificate authority ---------------------------------------------------------

@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[trustme.CA, Path]:
    """A throwaway CA and its certificate as a PEM file; no SSL_CERT_FILE/DIR from the outer environment."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    authority = trustme.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, pem


def server_context(authority: trustme.CA, host: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(host).configure_cert(context)
    return context


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"data": {"path": request.path}})


@contextlib.asynccontextmanager
async def tls_server(context: ssl.SSLContext) -> AsyncIterator[URL]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    try:
        yield URL(f"https://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


def test_private_ca_trusted_through_ssl_cert_file(ca: tuple[trustme.CA, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """SSL_CERT_FILE naming the CA's PEM (set before the first request): the https call gets its answer."""
    authority, pem = ca
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))

    async def scenario() -> None:
        async with tls_server(server_context(authority)) as base:
            client = HttpClient(limit=1, timeout=5)
            try:
                answer = await client.request("GET", base / "v3/requests", JSON_HEADERS)
            finally:
                await client.close()
            assert (answer.status, answer.payload) == (200, {"path": "/v3/requests"})

    run_async(scenario())


def test_untrusted_certificate_is_tls_and_not_sent(ca: tuple[trustme.CA, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SSL_CERT_FILE, or with a certificate for another host: NoAnswer cause tls, sent=False."""
    authority, pem = ca

    async def scenario() -> None:
        async with tls_server(server_context(authority)) as base:
            [failure] = await one_call(base / "v3/requests")
            assert (failure.sent, failure.cause) == (False, "tls")
            assert "127.0.0.1" in failure.kind
        monkeypatch.setenv("SSL_CERT_FILE", str(pem))
        async with tls_server(server_context(authority, "api.example")) as base:
            [failure] = await one_call(base / "v3/requests")
            assert (failure.sent, failure.cause) == (False, "tls")

    run_async(scenario())


class TlsSimulatorThread(LoopThread):
    """The simulator's app served over https (a certificate of ``authority``) on its own loop and thread."""

    def __init__(self, authority: trustme.CA) -> None:
        super().__init__("tls-simulator")
        self.sim = Simulator(sandbox_config())
        self.context = server_context(authority)

    async def _start(self) -> str:
        self._runner = web.AppRunner(self.sim.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context).start()
        return f"https://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        await self._runner.cleanup()


def test_run_over_https_with_a_private_ca(sim: SimulatorThread, env: dict[str, str], cli: Cli, tmp_path: Path,
                                          ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An https API, private CA: exit 3 naming SSL_CERT_FILE; with it, exit 0, also via HTTPS_PROXY (CONNECT)."""
    authority, pem = ca
    path = write_csv(tmp_path / "tls.csv", ROWS)
    with TlsSimulatorThread(authority) as tls:
        monkeypatch.setenv("BULKSTATUS_BASE_URL", tls.url)
        untrusted = cli("run", path)
        assert untrusted.code == 3, untrusted.err
        [line] = aborted_lines(untrusted)
        assert "not trusted" in line and "SSL_CERT_FILE" in line
        assert "Traceback" not in untrusted.err and tls.sim.state.stats()["create_calls"] == 0
        monkeypatch.setenv("SSL_CERT_FILE", str(pem))
        trusted = cli("run", "--new-run", path)
        assert trusted.code == 0, trusted.err
        assert len(tls.sim.state.accepted()) == 3
        one_row: list[tuple[str, ...]] = [("mobile", "919800000009", "Suspended", "tunnel")]
        with ProxyThread() as proxy, closed_port() as port:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")  # for http only: not used for https
            tunnelled = cli("run", "--new-run", "--no-pending-check", write_csv(tmp_path / "t2.csv", one_row))
        assert tunnelled.code == 0, tunnelled.err
        assert proxy.seen and {m for m, _ in proxy.seen} == {"CONNECT"}
        assert {target for _, target in proxy.seen} == {tls.url.removeprefix("https://")}
        assert len(tls.sim.state.accepted()) == 4
    assert sum(api_calls(sim).values()) == 0  # the plain simulator of the env fixture saw nothing


# -- 5. the UI token file rotated like `curl ... > token` -------------------------------------------------

OLD_TOKEN = "expired-maker-ui-token"


class WatchedTokens(dict[str, int]):
    """The simulator's accepted UI tokens; ``on_refused`` runs (on the simulator's loop, before the 401
    goes out) each time a token not among them is presented."""

    def __init__(self, accepted: dict[str, int], on_refused: Callable[[str], None]) -> None:
        super().__init__(accepted)
        self.on_refused = on_refused

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.on_refused(key)
        return super().get(key, default)


def token_file_run(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run reads its UI token from a file that holds a token the simulator no longer accepts."""
    token_file = tmp_path / "ui.jwt"
    token_file.write_text(OLD_TOKEN + "\n")
    monkeypatch.delenv("BULKSTATUS_UI_TOKEN")
    monkeypatch.setenv("BULKSTATUS_UI_TOKEN_FILE", str(token_file))
    return token_file


@pytest.mark.parametrize("pending_check", [True, False])
def test_token_file_rotated_while_the_run_waits(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                pending_check: bool) -> None:
    """Started-with token refused, file emptied, new token 0.3 s later: exit 0, each row submitted once."""
    token_file = token_file_run(env, tmp_path, monkeypatch)
    rotations: list[threading.Timer] = []

    def rotate(refused: str) -> None:  # `curl ... > ui.jwt`: the shell truncates, curl writes later
        if refused == OLD_TOKEN and not rotations:
            token_file.write_text("")
            rotations.append(threading.Timer(0.3, token_file.write_text, (simcfg.SANDBOX_MAKER_TOKEN + "\n",)))
            rotations[0].start()

    sim.config.maker_tokens = WatchedTokens({simcfg.SANDBOX_MAKER_TOKEN: simcfg.SANDBOX_MAKER_USER_ID}, rotate)
    data = rows(24)
    path = write_csv(tmp_path / "rot.csv", data)
    started = time.monotonic()
    result = cli("run", "--concurrency", "4", *([] if pending_check else ["--no-pending-check"]), path)
    elapsed = time.monotonic() - started
    for timer in rotations:
        timer.join(timeout=5)
    assert result.code == 0, result.err
    assert len(rotations) == 1 and elapsed < auth.SECRET_WAIT  # it waited for the file, not the deadline
    accepted = Counter((r.identifier_value, r.label) for r in sim.sim.state.accepted())
    assert accepted == Counter((r[1], r[2]) for r in data)  # each row once
    results = read_csv(result.folder / "results.csv")
    assert {r["outcome"] for r in results} == {"submitted"} and len(results) == len(data)
    assert {r["requestId"] for r in results} == {r.request_id for r in sim.sim.state.accepted()}
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["authRefreshes"] == 1
    refused = [c for c in sim.sim.state.received() if c.headers.get("X-CAP-UI-AUTH-TOKEN") == OLD_TOKEN]
    assert all(c.status == 401 for c in refused)
    if pending_check:  # the pending check's list call met the refusal; every create had the new token
        assert refused == [] and sim.sim.state.stats()["list_calls"] >= 2
    else:  # creates in flight together met it, and waited for the one refresh
        assert refused and len(sim.sim.state.received()) == len(data) + len(refused)
    assert_no_secrets(result.folder, result.out, result.err, secrets=[OLD_TOKEN, simcfg.SANDBOX_MAKER_TOKEN])


def test_token_file_left_empty_aborts_with_one_line(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is emptied and stays empty: after SECRET_WAIT, exit 3 with one line naming the file."""
    monkeypatch.setattr(auth, "SECRET_WAIT", 0.6)  # the wait's length is not what is tested
    token_file = token_file_run(env, tmp_path, monkeypatch)

    def empty(refused: str) -> None:
        token_file.write_text("")

    sim.config.maker_tokens = WatchedTokens({simcfg.SANDBOX_MAKER_TOKEN: simcfg.SANDBOX_MAKER_USER_ID}, empty)
    result = cli("run", "--no-pending-check", "--concurrency", "1", write_csv(tmp_path / "e.csv", rows(10)))
    assert result.code == 3, result.err
    [line] = aborted_lines(result)
    assert str(token_file) in line and "is empty" in line and "resume" in line
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert sim.sim.state.accepted() == []
    assert {r["outcome"] for r in read_csv(result.folder / "results.csv")} == {"unprocessed"}


def test_token_file_never_rotated_aborts_as_refused(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file keeps the refused token: after SECRET_WAIT, exit 3 with the 401 line, no internal error."""
    monkeypatch.setattr(auth, "SECRET_WAIT", 0.6)
    token_file_run(env, tmp_path, monkeypatch)
    sim.config.maker_tokens = {simcfg.SANDBOX_MAKER_TOKEN: simcfg.SANDBOX_MAKER_USER_ID}
    result = cli("run", "--no-pending-check", "--concurrency", "1", write_csv(tmp_path / "s.csv", rows(10)))
    assert result.code == 3, result.err
    [line] = aborted_lines(result)
    assert "401" in line and "--ui-token-file" in line
    assert "internal error" not in result.err and sim.sim.state.accepted() == []


@pytest.mark.parametrize("file_after", ["empty", "unchanged"])
def test_refused_token_stops_the_run_within_one_secret_wait(sim: SimulatorThread, env: dict[str, str], cli: Cli,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            file_after: str) -> None:
    """Eight creates refused at once and no new token comes: the run stops one SECRET_WAIT later, not eight."""
    monkeypatch.setattr(auth, "SECRET_WAIT", 0.15)
    monkeypatch.setattr(auth, "SECRET_POLL", 0.05)
    token_file = token_file_run(env, tmp_path, monkeypatch)
    first_refusal: list[float] = []

    def refused(token: str) -> None:
        if not first_refusal:
            first_refusal.append(time.monotonic())
            if file_after == "empty":
                token_file.write_text("")

    sim.config.maker_tokens = WatchedTokens({simcfg.SANDBOX_MAKER_TOKEN: simcfg.SANDBOX_MAKER_USER_ID}, refused)
    result = cli("run", "--no-pending-check", "--concurrency", "8", write_csv(tmp_path / "w.csv", rows(40)))
    stopped_after = time.monotonic() - first_refusal[0]
    assert result.code == 3, result.err
    assert len(aborted_lines(result)) == 1 and "internal error" not in result.err
    assert len([c for c in sim.sim.state.received() if c.status == 401]) >= 2  # refusals in flight together
    assert stopped_after < 2 * auth.SECRET_WAIT + 0.5, f"stopped {stopped_after:.2f} s after the first 401"


class EchoingServer(LoopThread):
    """An API that quotes the caller's credentials back in its error messages (some gateways do)."""

    def __init__(self, status: int) -> None:
        super().__init__("echoing-server")
        self.status = status

    async def _answer(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": [], "pagination": {"totalElements": 0, "totalPages": 0}})
        said = (f"token {request.headers.get('X-CAP-UI-AUTH-TOKEN')} with "
                f"{request.headers.get('Authorization')} may not do this")
        return web.json_response({"errors": [{"code": 4000 if self.status == 403 else 8015, "message": said}]},
                                 status=self.status)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        await self._runner.cleanup()


@pytest.mark.parametrize("status", [400, 403])
def test_server_text_quoting_our_secrets_is_masked(env: dict[str, str], cli: Cli, tmp_path: Path,
                                                    status: int) -> None:
    """A server that quotes the token and the Authorization header: a row's error column (400) and the
    abort line and summary (403) keep the text, with every secret masked."""
    path = write_csv(tmp_path / "echo.csv", ROWS)
    with EchoingServer(status) as server:
        result = cli("run", "--base-url", server.url, path)
    assert result.code == (1 if status == 400 else 3), result.err
    shown = (read_csv(result.folder / "results.csv")[0]["error"] if status == 400
             else json.loads((result.folder / "summary.json").read_text())["abortReason"])
    assert "may not do this" in shown and "***" in shown
    assert_no_secrets(result.folder, result.out, result.err)
