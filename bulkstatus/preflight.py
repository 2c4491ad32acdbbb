"""Checks before anything is sent: every required setting present, no two contradicting.

``check_connection`` is what any call to the API needs (run, resume, track, approve);
``check_for_sending`` adds what a maker request's body needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from bulkstatus.errors import ConfigError
from bulkstatus.settings import SPEC_BY_NAME, Settings

BODY_SETTINGS = ("till-id", "store-id", "zone-id", "concept-id", "intouch-host")


def _require(settings: Settings, names: Iterable[str]) -> None:
    for name in names:
        if not settings.get(name):
            spec = SPEC_BY_NAME[name]
            raise ConfigError(f"{name} is not set: pass --{name}, set {spec.env}, or add {name} to bulkstatus.toml")


def check_connection(settings: Settings, need_credentials: bool = True) -> None:
    """The base URL and org, and (unless only a dry run) the UI token and exactly one gateway auth."""
    _require(settings, ("base-url", "org-id"))
    base = str(settings.get("base-url"))
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"base-url {base!r} must start with https:// (or http:// for a local simulator)")
    if settings.get("concurrency") == 0:
        raise ConfigError("--concurrency must be at least 1")
    if not settings.get("list-limit"):
        raise ConfigError("--list-limit must be at least 1")
    if not need_credentials:
        return
    if not settings.get("ui-token"):
        raise ConfigError("the UI token is not set: set BULKSTATUS_UI_TOKEN, or name a file holding it with "
                          "--ui-token-file / BULKSTATUS_UI_TOKEN_FILE")
    basic = bool(settings.get("api-user")) or bool(settings.get("api-password"))
    oauth = bool(settings.get("oauth-key")) or bool(settings.get("oauth-secret"))
    if basic and oauth:
        raise ConfigError("both Basic (BULKSTATUS_API_USER/PASSWORD) and OAuth (BULKSTATUS_OAUTH_KEY/SECRET) "
                          "gateway auth are set: unset one of them")
    if not basic and not oauth:
        raise ConfigError("no gateway auth is set: set BULKSTATUS_API_USER and BULKSTATUS_API_PASSWORD (Basic), "
                          "or BULKSTATUS_OAUTH_KEY and BULKSTATUS_OAUTH_SECRET (OAuth)")
    for user, secret in (("api-user", "api-password"), ("oauth-key", "oauth-secret")):
        if bool(settings.get(user)) != bool(settings.get(secret)):
            missing = user if not settings.get(user) else secret
            raise ConfigError(f"{missing} is not set but {secret if missing == user else user} is: "
                              f"set {SPEC_BY_NAME[missing].env}")


def check_for_sending(settings: Settings, need_credentials: bool = True) -> None:
    """Stop before anything is sent when a required setting is missing or two contradict."""
    check_connection(settings, need_credentials)
    _require(settings, BODY_SETTINGS)
    if not need_credentials:
        return
    raw = bool(settings.get("intouch-authorization"))
    pair = bool(settings.get("intouch-user")) or bool(settings.get("intouch-password"))
    if raw and pair:
        raise ConfigError("both BULKSTATUS_INTOUCH_AUTHORIZATION and BULKSTATUS_INTOUCH_USER/PASSWORD are set: "
                          "unset one of them")
    if not raw and not (settings.get("intouch-user") and settings.get("intouch-password")):
        raise ConfigError("the inner task's Authorization is not set: set BULKSTATUS_INTOUCH_USER and "
                          "BULKSTATUS_INTOUCH_PASSWORD, or BULKSTATUS_INTOUCH_AUTHORIZATION")
