"""The test proxy (proxyserver.py) itself, driven by plain aiohttp clients against a small echo server."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import trustme
from aiohttp import web
from proxyserver import ProxyThread

AUTH = "Basic " + base64.b64encode(b"tester:secret").decode()


async def echo(request: web.Request) -> web.Response:
    if request.path == "/slow":
        await asyncio.sleep(0.3)
    return web.json_response({"method": request.method, "path": request.path_qs,
                              "body": (await request.read()).decode(), "headers": dict(request.headers)})


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[str, str, ssl.SSLContext]]:
    """(http base URL, https base URL, client context trusting the https one)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
    try:
        yield (f"http://127.0.0.1:{runner.addresses[0][1]}", f"https://127.0.0.1:{runner.addresses[1][1]}",
               client_context)
    finally:
        await runner.cleanup()


def run(test: Callable[[str, str, ssl.SSLContext], Awaitable[None]]) -> None:
    async def main() -> None:
        async with echo_server() as (http, https, context):
            await asyncio.wait_for(test(http, https, context), timeout=5)

    asyncio.run(main())


def test_forwards_get_post_and_tunnels_https() -> None:
    async def body(http: str, https: str, context: ssl.SSLContext) -> None:
        with ProxyThread() as proxy:
            async with aiohttp.ClientSession() as session:
                # aiohttp sends proxy_headers on CONNECT only; for an http target they go with the request
                async with session.get(f"{http}/a?x=1", proxy=proxy.url,
                                       headers={"X-Test": "yes", "Proxy-Authorization": AUTH}) as resp:
                    got: dict[str, Any] = await resp.json()
                assert resp.status == 200
                assert (got["method"], got["path"], got["headers"]["X-Test"]) == ("GET", "/a?x=1", "yes")
                assert "Proxy-Authorization" not in got["headers"]
                async with session.post(f"{http}/p", data=b'{"n": 1}', proxy=proxy.url,
                                        headers={"Content-Type": "application/json"}) as resp:
                    got = await resp.json()
                assert (got["method"], got["body"], got["headers"]["Content-Type"]) == (
                    "POST", '{"n": 1}', "application/json")
                async with session.get(f"{https}/tls", proxy=proxy.url, ssl=context) as resp:
                    assert (await resp.json())["path"] == "/tls"
            tunnel = https.removeprefix("https://")
            assert proxy.seen == [("GET", f"{http}/a?x=1"), ("POST", f"{http}/p"), ("CONNECT", tunnel)]
            assert proxy.refused == []

    run(body)


def test_refuses_with_403_or_407() -> None:
    async def body(http: str, https: str, context: ssl.SSLContext) -> None:
        async with aiohttp.ClientSession() as session:
            with ProxyThread(refuse=True) as proxy:
                async with session.get(f"{http}/a", proxy=proxy.url) as resp:
                    assert resp.status == 403
                try:
                    await session.get(f"{https}/tls", proxy=proxy.url, ssl=context)
                    raise AssertionError("the tunnel was not refused")
                except aiohttp.ClientHttpProxyError as exc:
                    assert exc.status == 403
                assert proxy.seen == []
                assert [m for m, _ in proxy.refused] == ["GET", "CONNECT"]
            with ProxyThread(auth=AUTH) as proxy:
                async with session.get(f"{http}/a", proxy=proxy.url) as resp:
                    assert resp.status == 407
                    assert resp.headers["Proxy-Authenticate"].startswith("Basic")
                async with session.get(f"{http}/a", proxy=proxy.url, headers={"Proxy-Authorization": AUTH}) as resp:
                    assert resp.status == 200
                    assert "Proxy-Authorization" not in (await resp.json())["headers"]
                async with session.get(f"{https}/tls", proxy=proxy.url, ssl=context,
                                       proxy_headers={"Proxy-Authorization": AUTH}) as resp:
                    assert resp.status == 200
                assert proxy.seen == [("GET", f"{http}/a"), ("CONNECT", https.removeprefix("https://"))]

    run(body)


def test_connections_dropped_by_either_side() -> None:
    async def body(http: str, https: str, context: ssl.SSLContext) -> None:
        with ProxyThread() as proxy:
            port = int(proxy.url.rsplit(":", 1)[1])
            async with aiohttp.ClientSession() as session:
                try:  # gives up while the target is still answering: the proxy then writes to a closed socket
                    await session.get(f"{http}/slow", proxy=proxy.url, timeout=aiohttp.ClientTimeout(total=0.05))
                    raise AssertionError("no timeout")
                except TimeoutError:
                    pass
            _, writer = await asyncio.open_connection("127.0.0.1", port)  # half a body, then gone
            writer.write(b"POST %s/p HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc" % http.encode())
            await writer.drain()
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)  # not HTTP at all
            writer.write(b"nonsense\r\n\r\n")
            assert await reader.read() == b""
            writer.close()
            await asyncio.sleep(0.35)  # the slow answer arrives for nobody
            async with aiohttp.ClientSession() as session, session.get(f"{http}/after", proxy=proxy.url) as resp:
                assert resp.status == 200
            assert proxy.seen == [("GET", f"{http}/slow"), ("GET", f"{http}/after")]
        with ProxyThread(one_per_connection=True) as proxy:  # like tinyproxy: one answer, then the socket closes
            reader, writer = await asyncio.open_connection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
            request = b"GET %s/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % http.encode()
            writer.write(request * 2)
            got = await reader.read()
            writer.close()
            assert got.startswith(b"HTTP/1.1 200 ") and got.count(b"HTTP/1.1") == 1
            assert b"connection:" not in got.lower()
            assert proxy.seen == [("GET", f"{http}/x")]

    run(body)
