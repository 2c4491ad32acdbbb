"""The checks every workflow call passes: gateway auth, org, and the Intouch user's UI token.

Error messages name the header that failed and never repeat its value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable, Mapping

from aiohttp import web

from bulkstatus.sim.config import SimConfig
from bulkstatus.sim.responses import v2_error

AUTH_FAILED = 401  # v2 error code the simulator uses for gateway and UI-token failures
INVALID_ORG = 1064


class OAuthTokens:
    """Access tokens issued by `/v3/oauth/token/generate`, each with its expiry on the simulator's clock."""

    __slots__ = ("_clock", "_expiry")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}

    def issue(self, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        # Forget expired tokens now and then so a long demo does not grow the table without bound.
        if len(self._expiry) > 1000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        self._expiry[token] = now + ttl_seconds
        return token

    def status(self, token: str) -> str:
        """One of: valid, expired, unknown."""
        expiry = self._expiry.get(token)
        if expiry is None:
            return "unknown"
        return "valid" if self._clock() < expiry else "expired"


def _basic_ok(value: str, users: Mapping[str, str]) -> bool:
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, digest = decoded.partition(":")
    password = users.get(user)
    if not sep or password is None:
        return False
    return secrets.compare_digest(digest.lower(), hashlib.md5(password.encode()).hexdigest())


def check_gateway(headers: Mapping[str, str], config: SimConfig, tokens: OAuthTokens) -> web.Response | None:
    """None when Basic or OAuth gateway auth is valid, else the 401 answer."""
    oauth = headers.get("X-CAP-API-OAUTH-TOKEN")
    basic = headers.get("Authorization")
    if basic is not None and _basic_ok(basic, config.basic_users):
        return None
    if oauth is not None:
        status = tokens.status(oauth)
        if status == "valid":
            return None
        if status == "expired":
            return v2_error(401, AUTH_FAILED, "X-CAP-API-OAUTH-TOKEN has expired: generate a new token")
        return v2_error(401, AUTH_FAILED, "X-CAP-API-OAUTH-TOKEN was not accepted")
    if basic is not None:
        message = "Authorization was not accepted: expected Basic base64(user:md5_hex(password))"
        return v2_error(401, AUTH_FAILED, message)
    message = "Gateway authentication missing: send Authorization (Basic) or X-CAP-API-OAUTH-TOKEN"
    return v2_error(401, AUTH_FAILED, message)


def check_caller(
    headers: Mapping[str, str], config: SimConfig, tokens: OAuthTokens
) -> tuple[int, str] | web.Response:
    """The caller's (userId, userName) after gateway, org and UI-token checks, or the error answer."""
    failure = check_gateway(headers, config, tokens)
    if failure is not None:
        return failure
    org = headers.get("X-CAP-API-AUTH-ORG-ID")
    if org is None:
        return v2_error(401, INVALID_ORG, "Invalid org: X-CAP-API-AUTH-ORG-ID is missing")
    if org != config.org_id:
        return v2_error(401, INVALID_ORG, "Invalid org: X-CAP-API-AUTH-ORG-ID does not match the credentials")
    ui_token = headers.get("X-CAP-UI-AUTH-TOKEN")
    if not ui_token:
        return v2_error(401, AUTH_FAILED, "X-CAP-UI-AUTH-TOKEN is missing")
    user_id = config.maker_tokens.get(ui_token)
    if user_id is None:
        return v2_error(401, AUTH_FAILED, "X-CAP-UI-AUTH-TOKEN was not accepted (unknown or expired)")
    return user_id, config.users.get(user_id, f"user{user_id}@sandbox.local")


def inner_auth_ok(value: object, config: SimConfig) -> bool:
    """Whether the payload's inner Authorization would pass the Intouch API (no check when unset)."""
    if not config.intouch_users:
        return True
    return isinstance(value, str) and _basic_ok(value, config.intouch_users)
