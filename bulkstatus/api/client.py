"""HTTP calls to the request-workflow API. Answers are data; only the transport can raise.

Any body may come back (the documented JSON, the v2 error shape, another JSON, HTML, nothing), so an
answer is parsed defensively into an ``Answer`` and never raises on its content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from bulkstatus.api.auth import Credentials
from bulkstatus.api.backoff import parse_retry_after
from bulkstatus.api.bodies import CREATE_PATH, REQUESTS_PATH
from bulkstatus.api.transport import HttpClient, TransportError
from bulkstatus.jsonio import dumps, loads


class SendError(Exception):
    """The request got no answer. ``in_doubt``: it may have reached the server (so it may exist)."""

    def __init__(self, kind: str, in_doubt: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.in_doubt = in_doubt


@dataclass(slots=True)
class Answer:
    status: int
    data: Any  # the parsed JSON, or None
    text: str  # a short excerpt of a non-JSON body, for the error column
    retry_after: float | None
    credential_version: int

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


def _excerpt(raw: bytes) -> str:
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


class WorkflowClient:
    """The calls bulkstatus makes, over one pool of keep-alive connections."""

    def __init__(self, base_url: str, credentials: Credentials, http: HttpClient) -> None:
        self._base = base_url.rstrip("/")
        self._create_url = self._base + CREATE_PATH
        self.credentials = credentials
        self.http = http

    async def create(self, body: dict[str, Any]) -> Answer:
        return await self._call("POST", self._create_url, dumps(body))

    async def decide(self, body: dict[str, Any]) -> Answer:
        return await self._call("PUT", self._create_url, dumps(body))

    async def get(self, request_id: str) -> Answer:
        return await self._call("GET", f"{self._base}{REQUESTS_PATH}/{quote(request_id, safe='')}")

    async def list(self, params: dict[str, str]) -> Answer:
        return await self._call("GET", f"{self._base}{REQUESTS_PATH}?{urlencode(params)}")

    async def _call(self, method: str, url: str, data: bytes | None = None) -> Answer:
        headers, version = await self.credentials.headers(self.http)
        try:
            response = await self.http.request(method, url, headers, data)
        except TransportError as exc:
            # Only a request with a body changes anything; it may exist if any of it was sent.
            raise SendError(exc.kind, in_doubt=data is not None and exc.sent) from None
        raw = response.body
        parsed: Any = None
        text = ""
        if raw:
            try:
                parsed = loads(raw)
            except ValueError:
                text = _excerpt(raw)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Answer(response.status, parsed, text, retry_after, version)
