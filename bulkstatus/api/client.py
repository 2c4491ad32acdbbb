"""HTTP to the request-workflow API over aiohttp's client. Answers are data; only a missing answer raises.

Any body may come back (the documented JSON, the v2 error shape, another JSON, HTML, nothing), so an
answer is parsed defensively into an ``Answer`` and never raises on its content. A call that got no
answer raises ``NoAnswer``, which says the one thing that matters for a maker request: whether it may
have reached the server (``sent``). The rule is aiohttp's own split of its exceptions: everything it
raises while getting a connection (refused, unreachable, DNS, TLS, the proxy, a connect timeout) is
*not sent*; anything after a connection was made or reused is *in doubt*. aiohttp's ``UploadTracker``
is not used to narrow that down: when a connection is torn down it keeps the last byte count it had
confirmed, which can be 0 although the kernel had taken the whole body, and a false "not sent" would
send a maker request twice, while a false "in doubt" costs one look-up.

Proxies come from the standard variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, upper or lower case),
resolved once per origin, not per request (aiohttp's ``trust_env`` reads them on every request).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bulkstatus import __version__
from bulkstatus.api.backoff import parse_retry_after
from bulkstatus.jsonio import loads

USER_AGENT = f"bulkstatus/{__version__}"
KEEPALIVE_SECONDS = 10.0  # an idle connection is closed after this (servers drop theirs after 15-75 s)


class NoAnswer(Exception):
    """The call got no (complete) answer.

    ``sent``: the request may have reached the server. ``cause``: ``network``, ``timeout``, ``tls``,
    ``proxy`` or ``config``, for the verdict and for a message that says what to fix.
    """

    def __init__(self, kind: str, sent: bool, cause: str = "network") -> None:
        super().__init__(kind)
        self.kind = kind
        self.sent = sent
        self.cause = cause


@dataclass(slots=True)
class Answer:
    status: int
    data: Any  # the parsed JSON, or None
    text: str  # a short excerpt of a non-JSON body, for the error column
    retry_after: float | None
    location: str = ""  # a redirect's target, to say where the API sent us
    date: str = ""  # the server's Date header, which tells its clock

    @property
    def payload(self) -> dict[str, Any] | None:
        """The ``data`` object of a documented answer, if there is one."""
        inner = self.data.get("data") if isinstance(self.data, dict) else None
        return inner if isinstance(inner, dict) else None

    def error(self) -> tuple[str, str]:
        """(code, message) from the v2 error shape or anything close to it; else a short description."""
        data = self.data
        if isinstance(data, dict):
            errors = data.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                first = errors[0]
                return str(first.get("code", "") or ""), str(first.get("message", "") or "")
            for key in ("message", "error", "error_description"):
                if isinstance(data.get(key), str):
                    return str(data.get("code", "") or ""), data[key]
        if self.text:
            return "", f"HTTP {self.status}: {self.text}"
        return "", f"HTTP {self.status} with no body"


def excerpt(raw: bytes) -> str:
    """A short, one-line version of a body that is not JSON: an HTML page's title, or its text."""
    text = raw.decode("utf-8", "replace")
    title = _TITLE.search(text)
    if title:
        text = title.group(1)
    elif "<" in text:
        text = _TAG.sub(" ", text)
    text = " ".join(text.split())
    return text[:160] + ("..." if len(text) > 160 else "")


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def env_proxy(url: str) -> URL | None:
    """The proxy the standard environment variables name for ``url``, or None (NO_PROXY, or none set)."""
    target = URL(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme or "")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or (target.host and bypass(target.host, proxies)):
        return None
    return URL(proxy if "://" in proxy else f"http://{proxy}")


def shown_proxy(proxy: URL) -> str:
    """The proxy as it may be printed: scheme, host and port, never a user or password."""
    return str(proxy.with_user(None).with_password(None).with_path("").with_query(None))


CONNECT_TIMEOUT = 10.0  # seconds for a TCP connect (at most --timeout)


class HttpClient:
    """One aiohttp session: at most ``limit`` connections, ``timeout`` seconds per call, proxies from
    the environment (unless ``use_proxy_env`` is off, as for the built-in simulator)."""

    def __init__(self, limit: int, timeout: float | None, use_proxy_env: bool = True) -> None:
        self._limit = max(1, limit)
        # A connect that times out is "not sent" (ConnectionTimeoutError); when the whole call's time runs
        # out first (a wait for a free connection, say), nothing tells where it was: "in doubt".
        self._timeout = aiohttp.ClientTimeout(total=timeout or None,
                                              sock_connect=min(timeout, CONNECT_TIMEOUT) if timeout else None)
        self._use_proxy_env = use_proxy_env
        self._proxies: dict[tuple[str, str, int | None], URL | None] = {}
        self._sessions: dict[bool, aiohttp.ClientSession] = {}  # by "through a proxy"

    def _open(self, force_close: bool) -> aiohttp.ClientSession:
        # The system's certificate store; SSL_CERT_FILE / SSL_CERT_DIR name a private CA.
        context = ssl.create_default_context()
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0, ssl=context,
                                         keepalive_timeout=None if force_close else KEEPALIVE_SECONDS,
                                         force_close=force_close)
        session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False,
                                        cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": USER_AGENT})
        # aiohttp sends a GET or PUT again, once, when a kept-alive connection breaks: a checker's decision
        # (PUT) must never go out twice, and every retry here is the policy's, so that is turned off.
        # A test pins it (tests/test_client.py), since the switch is not public.
        session._retry_connection = False
        return session

    def proxy_for(self, url: URL) -> URL | None:
        """The proxy for ``url``'s origin, looked up the first time the origin is used."""
        origin = (url.scheme, url.host or "", url.port)
        if origin not in self._proxies:
            self._proxies[origin] = env_proxy(str(url)) if self._use_proxy_env else None
        return self._proxies[origin]

    async def request(self, method: str, url: URL, headers: CIMultiDictProxy[str] | None,
                      body: bytes | None = None) -> Answer:
        """One call and its complete answer; raises NoAnswer when there is none."""
        proxy = self.proxy_for(url)
        # Many proxies (tinyproxy among them) close the connection after each answer without saying so;
        # the next request written into it would be a lost answer and a look-up. So through a proxy each
        # request has a connection of its own (a second session, force_close): a connect to the proxy
        # costs far less than the API's pace allows.
        session = self._sessions.get(proxy is not None)
        if session is None:
            session = self._sessions[proxy is not None] = self._open(force_close=proxy is not None)
        try:
            async with session.request(method, url, data=body, headers=headers, proxy=proxy,
                                       allow_redirects=False) as response:
                raw = await response.read()
                status = response.status
                head = response.headers
        except aiohttp.ClientConnectorCertificateError as exc:
            raise NoAnswer(f"TLS certificate of {url.host} not trusted ({exc.certificate_error})", False,
                           "tls") from None
        except aiohttp.ClientConnectorSSLError:
            raise NoAnswer(f"TLS handshake with {url.host} failed", False, "tls") from None
        except aiohttp.ClientProxyConnectionError:
            assert proxy is not None
            raise NoAnswer(f"cannot reach the proxy {shown_proxy(proxy)}", False, "proxy") from None
        except aiohttp.ClientHttpProxyError as exc:
            assert proxy is not None
            raise NoAnswer(f"the proxy {shown_proxy(proxy)} refused the connection (HTTP {exc.status})", False,
                           "proxy") from None
        except aiohttp.ClientConnectorError as exc:
            raise NoAnswer(f"cannot connect to {url.host}:{url.port} ({exc.strerror or 'refused'})",
                           False) from None
        except aiohttp.ConnectionTimeoutError:
            raise NoAnswer("timed out connecting", False, "timeout") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise NoAnswer("timed out waiting for the answer", True, "timeout") from None
        except aiohttp.ServerDisconnectedError:
            raise NoAnswer("connection closed with no answer", True) from None
        except aiohttp.ClientPayloadError:
            raise NoAnswer("answer cut off", True) from None
        except aiohttp.ClientResponseError:
            raise NoAnswer("malformed answer", True) from None
        except (aiohttp.InvalidURL, ValueError) as exc:
            # A header aiohttp refuses (a line break in a token, say) or a URL it cannot use: nothing went
            # out. The text names the header, never its value.
            raise NoAnswer(f"the request could not be built ({type(exc).__name__})", False, "config") from None
        except (aiohttp.ClientError, OSError):
            raise NoAnswer("connection broken", True) from None
        parsed: Any = None
        text = ""
        if raw:
            try:
                parsed = loads(raw)
            except ValueError:
                text = excerpt(raw)
        return Answer(status, parsed, text, parse_retry_after(head.get("Retry-After")),
                      head.get("Location", ""), head.get("Date", ""))

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        await asyncio.sleep(0)  # let the connectors close their transports
