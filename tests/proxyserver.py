"""A small HTTP forward proxy on 127.0.0.1 for tests: absolute-form requests and CONNECT tunnels.

``with ProxyThread() as proxy:`` runs it on its own event loop in a daemon thread (like simhelpers.py);
``proxy.url`` is ``http://127.0.0.1:PORT``, ``proxy.seen`` lists ``(method, absolute URL)`` of every
request forwarded (``("CONNECT", "host:port")`` for a tunnel), ``proxy.refused`` those answered 403/407.
``ProxyThread(refuse=True)`` answers 403 to everything; ``ProxyThread(auth="Basic ...")`` answers 407 to
any request whose Proxy-Authorization is not exactly that value; ``ProxyThread(one_per_connection=True)``
closes each client connection after one answer, saying nothing (as tinyproxy 1.11 does). Requests go
upstream with aiohttp's client (no environment proxies), minus hop-by-hop headers and Proxy-Authorization;
answers come back whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from multidict import CIMultiDict
from simhelpers import LoopThread
from yarl import URL

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "proxy-connection", "content-length"})


class ProxyThread(LoopThread):
    def __init__(self, *, refuse: bool = False, auth: str | None = None, one_per_connection: bool = False) -> None:
        super().__init__("proxy")
        self.refuse, self.auth, self.one_per_connection = refuse, auth, one_per_connection
        self.seen: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []
        self._open: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}

    async def _start(self) -> str:
        self._session = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                              timeout=aiohttp.ClientTimeout(total=30))
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        self._server.close()
        for writer in list(self._open):
            writer.close()
        if self._open:
            _, pending = await asyncio.wait(list(self._open.values()), timeout=2)
            for task in pending:
                task.cancel()
        await self._server.wait_closed()
        await self._session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        try:
            while await self._one(reader, writer) and not self.one_per_connection:
                pass
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent garbage: drop the connection, keep serving others
        finally:
            self._open.pop(writer, None)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True if the connection may carry another."""
        head = await reader.readuntil(b"\r\n\r\n")
        first, *lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, version = first.split(" ")
        headers = CIMultiDict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines))
        body = await read_body(reader, headers)
        if self.refuse or (self.auth is not None and headers.get("Proxy-Authorization") != self.auth):
            self.refused.append((method, target))
            await (answer(writer, 403, "Forbidden", [], b"refused by the test proxy\n") if self.refuse else
                   answer(writer, 407, "Proxy Authentication Required",
                          [("Proxy-Authenticate", 'Basic realm="test"')], b"proxy credentials needed\n"))
            return keep_alive(version, headers)
        if method == "CONNECT":
            await self._tunnel(target, reader, writer)
            return False
        if not target.startswith(("http://", "https://")):
            await answer(writer, 400, "Bad Request", [], b"absolute-form target needed\n")
            return False
        self.seen.append((method, target))
        drop = HOP_BY_HOP | {t.strip().lower() for t in headers.get("Connection", "").split(",")}
        out = [(k, v) for k, v in headers.items() if k.lower() not in drop]
        try:
            async with self._session.request(
                    method, URL(target, encoded=True), headers=out, data=body if body else None,
                    allow_redirects=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                              "Content-Type")) as resp:
                data = await resp.read()
                back = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]
                no_body = method == "HEAD" or resp.status in (204, 304)
                keep = [(k, v) for k, v in back if k.lower() not in HOP_BY_HOP or (no_body and
                                                                                   k.lower() == "content-length")]
                await answer(writer, resp.status, resp.reason or "", keep, None if no_body else data)
        except (TimeoutError, aiohttp.ClientError) as exc:
            await answer(writer, 502, "Bad Gateway", [], f"upstream failed: {type(exc).__name__}\n".encode())
        return keep_alive(version, headers)

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        self.seen.append(("CONNECT", target))
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            await answer(writer, 502, "Bad Gateway", [], b"cannot reach the target\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipes = [asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)  # one side is done: so is the tunnel
        finally:
            for one in pipes:
                one.cancel()
            up_writer.close()


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


async def read_body(reader: asyncio.StreamReader, headers: CIMultiDict[str]) -> bytes:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # trailers
        return b"".join(chunks)
    return await reader.readexactly(int(headers.get("Content-Length", "0")))


def keep_alive(version: str, headers: CIMultiDict[str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    return "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)


async def answer(writer: asyncio.StreamWriter, status: int, reason: str, headers: list[tuple[str, str]],
                 body: bytes | None) -> None:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    await writer.drain()
