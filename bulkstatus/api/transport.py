"""A small HTTP/1.1 client for the gateway: keep-alive connections over asyncio, answers parsed by llhttp.

Why not aiohttp's client: per request it costs about 180 us of CPU here (uvloop), this costs about 40;
with one request per row that is most of a run's CPU (benchmarks/README.md). What the gateway needs is
narrow, and this does only that: HTTP/1.1 to one or two origins (the API, the OAuth URL), http or https
with the system's certificate checks, bodies as bytes, answers with Content-Length, chunked or ended by
close, gzip/deflate if a server compresses anyway. No proxies, redirects or cookies (the API uses none).

The parsing, the part that is easy to get wrong, is httptools (the llhttp parser Node.js uses, wrapped by
the uvloop authors). This module only moves bytes and decides one thing carefully: whether a request that
got no answer may have reached the server (``TransportError.sent``), because a maker request that may
exist must be looked up, never sent again blindly.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from bulkstatus import __version__

IDLE_SECONDS = 10.0  # a kept-alive connection idle longer is closed, not reused (servers drop them ~15-75 s)
MAX_BODY = 16 * 1024 * 1024  # an answer larger than this is refused, not held in memory
USER_AGENT = f"bulkstatus/{__version__}"


class TransportError(Exception):
    """No (complete) answer. ``sent``: request bytes were handed to a connection, so it may have arrived."""

    def __init__(self, kind: str, sent: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.sent = sent


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


def header_block(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Header lines, formatted once and reused for every request that carries them.

    Raises ValueError, naming the header (never its value, which may be a secret), when a name or value
    holds a line break or another character that would break the request apart.
    """
    lines = []
    for name, value in pairs:
        if not name or any(c in name for c in ":\r\n\0 ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"the {name} header holds a line break or another character HTTP does not allow")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1", "strict")


@dataclass(frozen=True, slots=True)
class Origin:
    secure: bool
    host: str
    port: int
    host_header: bytes  # the ``Host: ...`` line


@lru_cache(maxsize=64)
def split_url(url: str) -> tuple[Origin, str]:
    """(origin, request target). Raises ValueError for anything but an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    default = 443 if secure else 80
    port = parts.port or default
    host = parts.hostname
    ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    shown = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port != default:
        shown = f"{shown}:{port}"
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe="/?&=%:@!$'()*+,;~")
    return Origin(secure, host, port, f"Host: {shown}\r\n".encode("ascii")), target


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._reset()

    def _reset(self) -> None:
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._received = False  # any byte of the answer
        self._delimited = False  # the answer's end is known from Content-Length or chunking

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes on an idle connection (a server's 408 before closing it, say)
            self._fail("unexpected data on an idle connection")
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the server switched protocols")
        except httptools.HttpParserError:
            self._fail("malformed answer")

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._delimited:
            self._complete()  # an answer that ends when the connection closes
        elif self._headers_done:
            waiter.set_exception(TransportError("answer cut off", sent=True))
        elif self._received:
            waiter.set_exception(TransportError("connection closed in the middle of the answer", sent=True))
        else:
            waiter.set_exception(TransportError("connection closed with no answer", sent=True))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        headers = self._headers
        self._delimited = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        length = headers.get("content-length", "0").strip()
        if length.isdigit() and int(length) > MAX_BODY:
            self._fail("answer too large")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            self._fail("answer too large")
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._complete()

    # the exchange

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self._reset()
            return
        body = b"".join(self._chunks)
        encoding = self._headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate") and body:
            try:
                body = _decompress(body, encoding)
            except (zlib.error, ValueError):
                self._fail("answer could not be decompressed")
                return
        if not self._parser.should_keep_alive():
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        waiter.set_result(Response(status, self._headers, body))

    def _fail(self, kind: str) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportError(kind, sent=True))

    async def exchange(self, request: bytes) -> Response:
        assert self.transport is not None
        self._reset()
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(request)
        try:
            return await waiter
        finally:
            self._waiter = None


def _decompress(body: bytes, encoding: str) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    try:
        out = zlib.decompressobj(wbits)
        data = out.decompress(body, MAX_BODY)
    except zlib.error:
        if encoding != "deflate":
            raise
        data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, MAX_BODY)  # raw deflate
        out = None
    if out is not None and out.unconsumed_tail:
        raise ValueError("answer too large")
    return data


class HttpClient:
    """Keep-alive connections to each origin, at most ``limit`` open in all; ``timeout`` per request."""

    def __init__(self, limit: int, timeout: float | None, idle: float = IDLE_SECONDS) -> None:
        self._limit = max(1, limit)
        self._slots = asyncio.Semaphore(self._limit)
        self._timeout = timeout or None
        self._idle = idle
        self._pools: dict[Origin, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self.opened = 0  # connections opened (for tests and the debug log)
        self.in_flight = 0

    async def request(self, method: str, url: str, headers: bytes = b"", body: bytes | None = None) -> Response:
        """One request and its complete answer; raises TransportError when there is none."""
        origin, target = split_url(url)
        head = b"%s %s HTTP/1.1\r\n%s%sUser-Agent: %s\r\n" % (
            method.encode("ascii"), target.encode("ascii"), origin.host_header, headers,
            USER_AGENT.encode("ascii"))
        length = b"" if body is None else b"Content-Length: %d\r\n" % len(body)
        request = b"%s%s\r\n%s" % (head, length, body or b"")
        async with self._slots:
            self.in_flight += 1
            conn: _Connection | None = None
            sent = False
            try:
                async with asyncio.timeout(self._timeout):
                    conn = await self._checkout(origin)
                    sent = True
                    response = await conn.exchange(request)
            except TimeoutError:
                raise TransportError("timed out waiting for the answer" if sent else "timed out connecting",
                                     sent=sent) from None
            except BaseException:
                if conn is not None and conn.transport is not None and not conn.closed:
                    conn.closed = True
                    conn.transport.abort()  # state unknown (cancelled mid-answer): never reuse it
                raise
            finally:
                self.in_flight -= 1
            if not conn.closed:
                conn.idle_since = asyncio.get_running_loop().time()
                self._pools.setdefault(origin, []).append(conn)
            return response

    async def _checkout(self, origin: Origin) -> _Connection:
        idle = self._pools.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle and conn.transport is not None \
                    and not conn.transport.is_closing():
                return conn
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
        self._close_surplus()
        return await self._connect(origin)

    def _close_surplus(self) -> None:
        """Before opening a connection: close idle ones (to other origins) so that at most ``limit`` are open.

        Every request in flight (this one included) holds or is about to hold one connection, so the
        idle ones may number ``limit - in_flight``.
        """
        idle = sum(map(len, self._pools.values()))
        free = self._limit - self.in_flight
        for pool in self._pools.values():
            while pool and idle > free:
                conn = pool.pop(0)  # the longest idle
                idle -= 1
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.secure:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await loop.create_connection(_Connection, origin.host, origin.port, ssl=context,
                                                   server_hostname=origin.host if context else None)
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(f"TLS certificate not trusted ({exc.verify_message})", sent=False) from None
        except ssl.SSLError:
            raise TransportError("TLS handshake failed", sent=False) from None
        except OSError:
            raise TransportError("connection refused or unreachable", sent=False) from None
        self.opened += 1
        return conn

    async def close(self) -> None:
        for pool in self._pools.values():
            for conn in pool:
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
        self._pools.clear()
