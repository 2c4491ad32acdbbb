"""Credentials that can expire during a long run: the UI token and the gateway's OAuth token.

Each set of headers carries a *version*. A call that gets a 401 asks for a refresh naming the version it
used; only the first such call refreshes, the others pick up the new headers.

A UI token file is rotated by other programs, often as ``curl ... > token``, which leaves it empty for a
moment. So a refresh reads it again for up to ``SECRET_WAIT`` seconds until it holds a token other than
the one refused; an empty or unreadable file after that stops the run (RunAborted, one line), as does a
token the API refuses again. A half-written token is taken as the new one: its 401 then stops the run
(exit 3, resumable).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy

from bulkstatus.api.bodies import basic_authorization
from bulkstatus.errors import ConfigError, RunAborted
from bulkstatus.jsonio import dumps
from bulkstatus.logs import add_secrets
from bulkstatus.settings import Settings, read_secret_file

if TYPE_CHECKING:
    from bulkstatus.api.calls import Settled

JSON_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))
SECRET_WAIT = 5.0  # seconds a refresh keeps reading a token file that is empty, unreadable or unchanged
SECRET_POLL = 0.2
Clock = Callable[[], float]
OAuthCall = Callable[[str, bytes], Awaitable["Settled"]]


def checked_headers(pairs: list[tuple[str, str]]) -> CIMultiDictProxy[str]:
    """The headers, refusing a value that would break the request apart; the message names the header,
    never its value (which may be a secret)."""
    for name, value in pairs:
        if any(c in value for c in "\r\n\0"):
            raise RunAborted(f"the {name} header holds a line break or another character HTTP does not allow: "
                             "check the value it is made from (the UI token, the org id, the gateway credentials)")
    return CIMultiDictProxy(CIMultiDict(pairs))


class Credentials:
    """Headers for the gateway (org, UI token, Basic or OAuth) with refresh on expiry."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
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
        self._oauth_call: OAuthCall | None = None
        self._lock = asyncio.Lock()
        self._headers: CIMultiDictProxy[str] | None = None  # built once per token, not per request
        self.version = 0
        self.refreshes = 0
        # The version whose refresh found nothing new, and what it raised: the calls that were refused with
        # the same version and waited on the lock meanwhile hear the same at once, not SECRET_WAIT later.
        self._refused = -1
        self._refusal: RunAborted | None = None

    def bind(self, oauth_call: OAuthCall) -> None:
        """How to reach the OAuth URL: through the caller's loop, so that it is paced and judged too."""
        self._oauth_call = oauth_call

    @property
    def uses_oauth(self) -> bool:
        return self._oauth_key is not None and self._basic is None

    async def headers(self) -> tuple[CIMultiDictProxy[str], int]:
        """The headers for one request and the credential version they carry."""
        if self.uses_oauth and (self._oauth_token is None or self._clock() >= self._oauth_expires):
            await self._renew_oauth()
        headers = self._headers
        if headers is None:  # the first request, or a token changed
            pairs = [("X-CAP-API-AUTH-ORG-ID", self._org), ("X-CAP-UI-AUTH-TOKEN", self._ui_token), *JSON_HEADERS]
            if self._basic is not None:
                pairs.append(("Authorization", self._basic))
            elif self._oauth_token is not None:
                pairs.append(("X-CAP-API-OAUTH-TOKEN", self._oauth_token))
            headers = self._headers = checked_headers(pairs)
        return headers, self.version

    async def refresh(self, used_version: int) -> bool:
        """After a 401: read the UI token file again and generate a new OAuth token.

        Returns False when nothing changed (no token file and Basic auth, or the same token for
        ``SECRET_WAIT`` seconds), so the caller knows a retry would fail the same way.
        """
        async with self._lock:
            if self.version != used_version:
                return True  # another call refreshed already
            if self._refused == used_version:  # another call waited SECRET_WAIT for this version already
                if self._refusal is not None:
                    raise self._refusal
                return False
            changed = False
            if self._ui_file is not None:
                try:
                    token = await self._read_new_token()
                except RunAborted as exc:
                    self._refused, self._refusal = used_version, exc
                    raise
                changed = token != self._ui_token
                self._ui_token = token
                add_secrets([token])  # a rotated token is as secret as the first
                self._headers = None
            if self.uses_oauth:
                try:
                    await self._fetch_oauth()
                except RunAborted as exc:  # the calls waiting on the lock hear it, not each try again
                    self._refused, self._refusal = used_version, exc
                    raise
                changed = True
            if changed:
                self.version += 1
                self.refreshes += 1
            else:
                self._refused, self._refusal = used_version, None
            return changed

    async def _read_new_token(self) -> str:
        """The token file's content once it is readable, not empty and not the refused token; after
        ``SECRET_WAIT`` seconds, what it holds (the same token), or RunAborted when it holds nothing."""
        assert self._ui_file is not None
        deadline = self._clock() + SECRET_WAIT
        while True:
            try:
                token = read_secret_file(self._ui_file, "ui-token-file")
            except ConfigError as exc:
                if self._clock() >= deadline:
                    raise RunAborted(f"{exc} (still, {SECRET_WAIT:.0f} s after the API refused the old token); "
                                     "then resume the run") from None
            else:
                if token != self._ui_token or self._clock() >= deadline:
                    return token
            await self._sleep(SECRET_POLL)

    async def _renew_oauth(self) -> None:
        async with self._lock:
            if self._oauth_token is not None and self._clock() < self._oauth_expires:
                return  # another call renewed it while this one waited for the lock
            await self._fetch_oauth()
            self.version += 1

    async def _fetch_oauth(self) -> None:
        assert self._oauth_call is not None, "Credentials.bind() was not called"
        settled = await self._oauth_call(self._oauth_url, dumps({"key": self._oauth_key,
                                                                 "secret": self._oauth_secret}))
        data = settled.answer.payload if settled.done and settled.answer is not None else None
        if data is None:
            status, _, message = settled.error()
            raise RunAborted(f"OAuth token generation failed ({f'HTTP {status}' if status else message}): "
                             "check --oauth-url and the network, then resume")
        token, ttl = str(data["accessToken"]), data.get("ttlSeconds")
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 300.0
        # Renew before it expires: a minute early, or at 80% of its life when that is shorter.
        self._oauth_token = token
        add_secrets([token])
        self._headers = None
        self._oauth_expires = self._clock() + lifetime - min(60.0, lifetime * 0.2)
