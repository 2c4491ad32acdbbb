"""The simulator's settings: sandbox credentials and the faults to inject.

`SimConfig()` is the sandbox that `bulkstatus sandbox` and the README's first run use. Every field can be
changed while the simulator runs (tests assign attributes, demos POST to `/__sim/config`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

SANDBOX_ORG_ID = "50672"
SANDBOX_MAKER_TOKEN = "sandbox-maker-ui-token"
SANDBOX_CHECKER_TOKEN = "sandbox-checker-ui-token"
SANDBOX_MAKER_USER_ID = 1001
SANDBOX_CHECKER_USER_ID = 1002
SANDBOX_API_USER = "sandbox.till"
SANDBOX_API_PASSWORD = "sandbox-password"
SANDBOX_OAUTH_KEY = "sandbox-key"
SANDBOX_OAUTH_SECRET = "sandbox-secret"
SANDBOX_TILL_ID, SANDBOX_STORE_ID, SANDBOX_ZONE_ID, SANDBOX_CONCEPT_ID = (
    "50682289",
    "50682288",
    "50682286",
    "50678331",
)
SANDBOX_INTOUCH_HOST = "https://intouch.sandbox.invalid"
SANDBOX_INTOUCH_USER = "sandbox.intouch"
SANDBOX_INTOUCH_PASSWORD = "sandbox-intouch-password"

# The largest `limit` the list endpoint accepts; the real maximum is not documented.
MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 10


def basic_auth_value(user: str, password: str) -> str:
    """Capillary's Basic form: `Basic base64(user + ":" + md5_hex(password))`."""
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{digest}".encode()).decode("ascii")


@dataclass
class SimConfig:
    """What the simulator accepts and which faults it injects; the defaults are the sandbox."""

    org_id: str = SANDBOX_ORG_ID
    # Accepted X-CAP-UI-AUTH-TOKEN -> userId.
    maker_tokens: dict[str, int] = field(
        default_factory=lambda: {
            SANDBOX_MAKER_TOKEN: SANDBOX_MAKER_USER_ID,
            SANDBOX_CHECKER_TOKEN: SANDBOX_CHECKER_USER_ID,
        }
    )
    users: dict[int, str] = field(
        default_factory=lambda: {
            SANDBOX_MAKER_USER_ID: "maker@sandbox.local",
            SANDBOX_CHECKER_USER_ID: "checker@sandbox.local",
        }
    )
    # userIds with CanCheckRequest.
    checkers: set[int] = field(default_factory=lambda: {SANDBOX_CHECKER_USER_ID})
    # Gateway Basic users: api user -> plain password (the simulator computes the md5).
    basic_users: dict[str, str] = field(default_factory=lambda: {SANDBOX_API_USER: SANDBOX_API_PASSWORD})
    oauth_clients: dict[str, str] = field(default_factory=lambda: {SANDBOX_OAUTH_KEY: SANDBOX_OAUTH_SECRET})
    oauth_ttl_seconds: int = 300
    # Credentials the inner Intouch call accepts (the payload's headers.Authorization). A request whose inner
    # Authorization matches none of them is accepted, but its approval ends in state "failed", as the inner
    # call would fail. An empty dict turns the check off.
    intouch_users: dict[str, str] = field(
        default_factory=lambda: {SANDBOX_INTOUCH_USER: SANDBOX_INTOUCH_PASSWORD}
    )
    # The zone of the server's clock, in minutes east of UTC: startTime and endTime are written in it with no
    # zone, as the docs' sample does (its startTime is India's +05:30 for a requestId made 5.5 hours earlier
    # in UTC); requestIds are version-1 UUIDs, whose time is UTC.
    stamp_zone_minutes: int = 330
    latency: tuple[float, float] = (0.0, 0.0)
    # Seconds each list call takes (a pending check paging through a long queue of an org's requests).
    list_latency: tuple[float, float] = (0.0, 0.0)
    error_rate: float = 0.0
    # At most rate_limit creates in any rate_limit_period seconds (a sliding window); None: no limit.
    rate_limit: float | None = None
    rate_limit_period: float = 1.0
    # A share of creates answered 429 whatever the pace: throttling a test sees on any machine's speed.
    throttle_rate: float = 0.0
    retry_after: float | None = None
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    # A share of list calls answered 503: the look-up of a lost answer, or the pending check, failing.
    list_error_rate: float = 0.0
    not_found: set[str] = field(default_factory=set)
    # Identifier values whose creates are always answered 503 with the API's 4001 (a transient error): rows
    # whose retries run out.
    always_error: set[str] = field(default_factory=set)
    fail_on_approve: set[str] = field(default_factory=set)
    auto_approve: bool = False
    seed: int | None = None
    # How many received create calls SimState keeps for inspection (the oldest are forgotten first).
    received_max: int = 100_000

    def update(self, changes: dict[str, Any]) -> None:
        """Apply JSON-shaped changes (lists for sets and tuples, string keys for `users`).

        Raises ValueError naming the field when a name is unknown or a value has the wrong type; nothing is
        changed then.
        """
        known = {f.name for f in fields(self)}
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown SimConfig field {name!r}")
            try:
                converted[name] = _convert(name, value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bad value for SimConfig field {name!r}: {exc}") from None
        for name, value in converted.items():
            setattr(self, name, value)

    def public_view(self) -> dict[str, Any]:
        """The settings without tokens or passwords, for `/__sim/config` answers."""
        return {
            "org_id": self.org_id,
            "users": {str(k): v for k, v in self.users.items()},
            "checkers": sorted(self.checkers),
            "oauth_ttl_seconds": self.oauth_ttl_seconds,
            "stamp_zone_minutes": self.stamp_zone_minutes,
            "latency": list(self.latency),
            "list_latency": list(self.list_latency),
            "error_rate": self.error_rate,
            "rate_limit": self.rate_limit,
            "rate_limit_period": self.rate_limit_period,
            "throttle_rate": self.throttle_rate,
            "retry_after": self.retry_after,
            "drop_before_rate": self.drop_before_rate,
            "drop_after_rate": self.drop_after_rate,
            "list_error_rate": self.list_error_rate,
            "not_found": sorted(self.not_found),
            "always_error": sorted(self.always_error),
            "fail_on_approve": sorted(self.fail_on_approve),
            "auto_approve": self.auto_approve,
            "seed": self.seed,
            "received_max": self.received_max,
        }


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return {str(k): str(v) for k, v in value.items()}


def _rate(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("expected a fraction between 0 and 1")
    return number


def _optional_positive(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if number < 0:
        raise ValueError("expected a non-negative number or null")
    return number


def _convert(name: str, value: Any) -> Any:
    if name in ("org_id",):
        return str(value)
    if name == "maker_tokens":
        if not isinstance(value, dict):
            raise TypeError("expected an object")
        return {str(k): int(v) for k, v in value.items()}
    if name == "users":
        if not isinstance(value, dict):
            raise TypeError("expected an object")
        return {int(k): str(v) for k, v in value.items()}
    if name == "checkers":
        return {int(v) for v in value}
    if name in ("basic_users", "oauth_clients", "intouch_users"):
        return _str_dict(value)
    if name in ("not_found", "fail_on_approve", "always_error"):
        if isinstance(value, str):
            raise TypeError("expected a list of strings")
        return {str(v) for v in value}
    if name in ("oauth_ttl_seconds", "received_max", "stamp_zone_minutes"):
        return int(value)
    if name in ("latency", "list_latency"):
        low, high = (float(v) for v in value)
        if not 0 <= low <= high:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return (low, high)
    if name in ("error_rate", "drop_before_rate", "drop_after_rate", "throttle_rate", "list_error_rate"):
        return _rate(value)
    if name in ("rate_limit", "retry_after"):
        return _optional_positive(value)
    if name == "rate_limit_period":
        period = float(value)
        if not 0 < period < float("inf"):
            raise ValueError("expected a number of seconds above 0")
        return period
    if name == "auto_approve":
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if name == "seed":
        return None if value is None else int(value)
    raise ValueError(f"unknown SimConfig field {name!r}")  # pragma: no cover - guarded by update()
