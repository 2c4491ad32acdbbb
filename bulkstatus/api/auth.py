"""Credentials that can expire during a long run: the UI token and the gateway's OAuth token.

Each provider hands out headers together with a *version*. A worker that gets a 401 asks for a refresh
naming the version it used; only the first such worker refreshes, the others just pick up the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulkstatus.api.bodies import basic_authorization
from bulkstatus.api.transport import HttpClient, TransportError, header_block
from bulkstatus.errors import RunAborted
from bulkstatus.jsonio import dumps, loads
from bulkstatus.settings import Settings, read_secret_file

JSON_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))

Clock = Callable[[], float]


class Credentials:
    """Headers for the gateway (org, UI token, Basic or OAuth) with refresh on expiry."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._org = str(settings.get("org-id"))
        self._ui_token = str(settings.get("ui-token"))
        file = settings.get("ui-token-file")
        self._ui_file = Path(file) if file else None
        self._basic = None
        if settings.get("api-user"):
            self._basic = basic_authorization(str(settings.get("api-user")), str(settings.get("api-password")))
        self._oauth_key = settings.get("oauth-key")
        self._oauth_secret = settings.get("oauth-secret")
        base = str(settings.get("base-url")).rstrip("/")
        self._oauth_url = str(settings.get("oauth-url") or f"{base}/v3/oauth/token/generate")
        self._oauth_token: str | None = None
        self._oauth_expires = 0.0
        self._lock = asyncio.Lock()
        self._headers: bytes | None = None  # formatted once per token, not per request
        self.version = 0
        self.refreshes = 0

    @property
    def uses_oauth(self) -> bool:
        return self._oauth_key is not None and self._basic is None

    async def headers(self, http: HttpClient) -> tuple[bytes, int]:
        """Header lines for one request and the credential version they carry."""
        if self.uses_oauth and (self._oauth_token is None or self._clock() >= self._oauth_expires):
            await self._renew_oauth(http)
        headers = self._headers
        if headers is None:  # the first request, or a token changed
            pairs = [("X-CAP-API-AUTH-ORG-ID", self._org), ("X-CAP-UI-AUTH-TOKEN", self._ui_token),
                     *JSON_HEADERS]
            if self._basic is not None:
                pairs.append(("Authorization", self._basic))
            elif self._oauth_token is not None:
                pairs.append(("X-CAP-API-OAUTH-TOKEN", self._oauth_token))
            try:
                headers = self._headers = header_block(pairs)
            except ValueError as exc:
                raise RunAborted(f"{exc}: check the org id, the UI token and the gateway credentials") from None
        return headers, self.version

    async def refresh(self, http: HttpClient, used_version: int) -> bool:
        """After a 401: read the UI token file again and generate a new OAuth token.

        Returns False when nothing could change (no token file, Basic auth, same token), so the caller
        knows a retry would fail the same way.
        """
        async with self._lock:
            if self.version != used_version:
                return True  # another worker refreshed already
            changed = False
            if self._ui_file is not None:
                token = read_secret_file(self._ui_file, "ui-token-file")
                changed = token != self._ui_token
                self._ui_token = token
                self._headers = None
            if self.uses_oauth:
                await self._fetch_oauth(http)
                changed = True
            if changed:
                self.version += 1
                self.refreshes += 1
            return changed

    async def _renew_oauth(self, http: HttpClient) -> None:
        async with self._lock:
            if self._oauth_token is not None and self._clock() < self._oauth_expires:
                return  # another worker renewed it while this one waited for the lock
            await self._fetch_oauth(http)
            self.version += 1

    async def _fetch_oauth(self, http: HttpClient) -> None:
        body = dumps({"key": self._oauth_key, "secret": self._oauth_secret})
        try:
            response = await http.request("POST", self._oauth_url, header_block(JSON_HEADERS), body)
        except TransportError as exc:
            raise RunAborted(f"cannot reach the OAuth token URL ({exc.kind}): check --oauth-url "
                             "and the network") from None
        except ValueError:
            raise RunAborted("the OAuth token URL is not an http(s) URL: check --oauth-url") from None
        status, text = response.status, response.body
        data: Any = None
        with contextlib.suppress(ValueError):
            data = loads(text)
        token = ttl = None
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            token = data["data"].get("accessToken")
            ttl = data["data"].get("ttlSeconds")
        if status != 200 or not isinstance(token, str) or not token:
            raise RunAborted(f"OAuth token generation failed (HTTP {status}): check BULKSTATUS_OAUTH_KEY and "
                             "BULKSTATUS_OAUTH_SECRET")
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 300.0
        # Renew before it expires: a minute early, or at 80% of its life when that is shorter.
        self._oauth_token = token
        self._headers = None
        self._oauth_expires = self._clock() + lifetime - min(60.0, lifetime * 0.2)
