"""transport.py against scripted servers on 127.0.0.1: every way an answer can be framed, cut or lost.

Each server reads one request (headers and Content-Length body) at a time and answers with the bytes a
test gives; ``None`` closes the connection without a word. The client under test is the real one, over
real sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme

from bulkstatus.api.transport import HttpClient, Response, TransportError, header_block, split_url

Answerer = Callable[[int, bytes], Awaitable[bytes | None]]  # (request number, request) -> answer


class Close(bytes):
    """An answer after which the server closes the connection."""


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Server:
    """Answers requests in order; counts connections and keeps the requests it read."""

    def __init__(self, answer: Answerer, ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()

    def url(self, path: str = "/x", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = await self.answer(len(self.requests), request)
                if answer is None:
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
                if isinstance(answer, Close):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def exchange(answer: Answerer, requests: int = 1, method: str = "POST", body: bytes | None = b"{}",
                   **client: Any) -> tuple[list[Response | TransportError], Server, HttpClient]:
    """Send ``requests`` requests one after another; each result is a Response or the TransportError."""
    http = HttpClient(limit=client.pop("limit", 2), timeout=client.pop("timeout", 5.0), **client)
    results: list[Response | TransportError] = []
    async with Server(answer) as server:
        for _ in range(requests):
            try:
                results.append(await http.request(method, server.url(), header_block([("A", "b")]), body))
            except TransportError as exc:
                results.append(exc)
        await http.close()
    return results, server, http


def fixed(*answers: bytes | None) -> Answerer:
    async def answer(number: int, request: bytes) -> bytes | None:
        return answers[min(number, len(answers)) - 1]
    return answer


def test_request_bytes_and_keep_alive() -> None:
    results, server, http = run(exchange(fixed(ok()), requests=3))
    assert [r.status for r in results if isinstance(r, Response)] == [200, 200, 200]
    assert server.connections == 1 and http.opened == 1  # one connection, kept alive
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /x HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"A: b" in lines and b"Content-Length: 2" in lines and body == b"{}"


def test_get_has_no_body_and_no_length() -> None:
    results, server, _ = run(exchange(fixed(ok()), method="GET", body=None))
    assert isinstance(results[0], Response)
    assert b"Content-Length" not in server.requests[0] and server.requests[0].endswith(b"\r\n\r\n")


def test_chunked_answer_is_joined() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
    results, server, _ = run(exchange(fixed(chunked), requests=2))
    assert [r.body for r in results if isinstance(r, Response)] == [b'{"a":1}', b'{"a":1}']
    assert server.connections == 1


def test_answer_ended_by_close_is_complete_and_the_connection_not_reused() -> None:
    # No length, no chunks: the body ends when the server closes; the next request gets a new connection.
    http_results, server, _ = run(exchange(fixed(Close(b"HTTP/1.0 200 OK\r\n\r\nall of it")), requests=2))
    assert [r.body for r in http_results if isinstance(r, Response)] == [b"all of it", b"all of it"]
    assert server.connections == 2


def test_connection_close_header_is_honoured() -> None:
    results, server, _ = run(exchange(fixed(ok(extra=b"Connection: close\r\n")), requests=2))
    assert all(isinstance(r, Response) for r in results)
    assert server.connections == 2


def test_gzip_and_deflate_answers_are_decoded() -> None:
    body = b'{"data":{"requestId":"r1"}}'
    results, _, _ = run(exchange(fixed(ok(gzip.compress(body), b"Content-Encoding: gzip\r\n"),
                                       ok(zlib.compress(body), b"Content-Encoding: deflate\r\n")),
                                 requests=2))
    assert [r.body for r in results if isinstance(r, Response)] == [body, body]


def test_headers_are_lower_case_and_status_kept() -> None:
    answer = b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n"
    results, _, _ = run(exchange(fixed(answer)))
    assert isinstance(results[0], Response)
    assert results[0].status == 429 and results[0].headers["retry-after"] == "3" and results[0].body == b""


def test_interim_100_continue_is_skipped() -> None:
    results, _, _ = run(exchange(fixed(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"))))
    assert isinstance(results[0], Response) and results[0].body == b"final"


@pytest.mark.parametrize(("answer", "kind"), [
    (None, "connection closed with no answer"),
    (Close(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"da"), "answer cut off"),
    (Close(b"HTTP/1.1 200 O"), "connection closed in the middle of the answer"),
    (b"SMTP ready\r\n\r\n", "malformed answer"),
])
def test_a_lost_answer_says_the_request_may_have_arrived(answer: bytes | None, kind: str) -> None:
    results, server, _ = run(exchange(fixed(answer, ok()), requests=2))
    first, second = results
    assert isinstance(first, TransportError) and first.kind == kind and first.sent
    assert isinstance(second, Response) and second.status == 200  # a fresh connection works
    assert server.connections == 2


def test_timeout_waiting_for_the_answer_is_in_doubt() -> None:
    async def slow(number: int, request: bytes) -> bytes | None:
        if number == 1:
            await asyncio.sleep(5)
        return ok()

    results, _, _ = run(exchange(slow, requests=2, timeout=0.2))
    assert isinstance(results[0], TransportError) and results[0].sent
    assert results[0].kind == "timed out waiting for the answer"
    assert isinstance(results[1], Response)


def test_refused_connection_was_not_sent() -> None:
    async def go() -> TransportError:
        async with Server(fixed(ok())) as server:
            url = server.url()
        await asyncio.sleep(0.05)  # the port is closed now
        http = HttpClient(limit=1, timeout=2)
        with pytest.raises(TransportError) as caught:
            await http.request("POST", url, b"", b"{}")
        return caught.value

    error = run(go())
    assert error.kind == "connection refused or unreachable" and not error.sent


def test_idle_connection_closed_by_the_server_is_not_reused() -> None:
    async def go() -> tuple[list[int], Server]:
        async with Server(fixed(ok())) as server:
            http = HttpClient(limit=1, timeout=2)
            first = await http.request("GET", server.url())
            for writer in server.writers:
                writer.close()  # the server drops the idle keep-alive connection
            await asyncio.sleep(0.05)
            second = await http.request("POST", server.url(), b"", b"{}")
            await http.close()
            return [first.status, second.status], server

    statuses, server = run(go())
    assert statuses == [200, 200] and server.connections == 2


def test_connection_idle_too_long_is_replaced() -> None:
    async def go() -> tuple[int, int]:
        async with Server(fixed(ok())) as server:
            http = HttpClient(limit=1, timeout=2, idle=0.05)
            await http.request("GET", server.url())
            await asyncio.sleep(0.1)
            await http.request("GET", server.url())
            await http.close()
            return server.connections, http.opened

    assert run(go()) == (2, 2)


def test_never_more_connections_than_the_limit() -> None:
    async def go() -> tuple[int, int, int]:
        async def slowish(number: int, request: bytes) -> bytes | None:
            await asyncio.sleep(0.01)
            return ok()

        async with Server(slowish) as one, Server(slowish) as two:
            http = HttpClient(limit=3, timeout=5)
            urls = [one.url(), two.url()] * 20
            await asyncio.gather(*(http.request("GET", url) for url in urls))
            open_now = sum(len(pool) for pool in http._pools.values())
            await http.close()
            return one.connections + two.connections, http.opened, open_now

    connections, opened, open_now = run(go())
    assert opened == connections and open_now <= 3


def test_header_values_that_would_split_the_request_are_refused() -> None:
    with pytest.raises(ValueError, match="X-CAP-UI-AUTH-TOKEN") as caught:
        header_block([("X-CAP-UI-AUTH-TOKEN", "secret\r\nEvil: 1")])
    assert "secret" not in str(caught.value)


def test_url_split() -> None:
    origin, target = split_url("https://eu.api.example.com/api_gateway/v2/x?a=1&b=%20")
    assert (origin.secure, origin.host, origin.port, origin.host_header) == (
        True, "eu.api.example.com", 443, b"Host: eu.api.example.com\r\n")
    assert target == "/api_gateway/v2/x?a=1&b=%20"
    with pytest.raises(ValueError):
        split_url("ftp://example.com/x")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def test_https_with_a_trusted_certificate(authority: trustme.CA, tmp_path: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # how a user trusts a private CA, too

    async def go() -> tuple[Response | TransportError, Response | TransportError]:
        async with Server(fixed(ok()), ssl_context=server_context) as server:
            trusted = HttpClient(limit=1, timeout=5)
            answer = await trusted.request("GET", server.url(scheme="https", host="localhost"))
            await trusted.close()
            monkeypatch.delenv("SSL_CERT_FILE")
            untrusted = HttpClient(limit=1, timeout=5)
            try:
                refused: Response | TransportError = await untrusted.request(
                    "POST", server.url(scheme="https", host="localhost"), b"", b"{}")
            except TransportError as exc:
                refused = exc
            await untrusted.close()
            return answer, refused

    answer, refused = run(go())
    assert isinstance(answer, Response) and answer.status == 200
    assert isinstance(refused, TransportError) and not refused.sent
    assert refused.kind.startswith("TLS certificate not trusted")


def test_an_answer_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import bulkstatus.api.transport as transport

    monkeypatch.setattr(transport, "MAX_BODY", 10)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    results, _, _ = run(exchange(fixed(ok(b"x" * 11), chunked, ok(b"x" * 10)), requests=3))
    assert [getattr(r, "kind", None) for r in results] == ["answer too large", "answer too large", None]


def test_a_connection_that_speaks_while_idle_is_not_reused() -> None:
    """A server that answers 408 on an idle keep-alive connection: the next request opens a new one."""
    async def go() -> tuple[int, int]:
        async with Server(fixed(ok())) as server:
            http = HttpClient(limit=1, timeout=2)
            await http.request("GET", server.url())
            for writer in server.writers:
                writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            await asyncio.sleep(0.05)
            second = await http.request("GET", server.url())
            await http.close()
            return second.status, server.connections

    assert run(go()) == (200, 2)
