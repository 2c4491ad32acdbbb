"""The settings that point a run at the built-in simulator, and the `sandbox` command's options.

Every value is a made-up sandbox value, or one printed in Capillary's docs.
"""

from __future__ import annotations

import math

from bulkstatus.errors import ConfigError
from bulkstatus.settings import Settings, parse_rate
from bulkstatus.sim import config as sim

# Identifier values the sandbox answers with 8015 "customer not found", so that samples/messy.csv shows
# that outcome too.
SANDBOX_NOT_FOUND = frozenset({"919999999999", "ghost@example.com"})


# The credentials the docs' examples carry, so that their headers work as printed: the gateway's Basic
# example `Basic c3RvcmUxMjM6YmRj...` (the text says store123 / Pass123, but the header is the md5 of
# "password1234": the header as printed is accepted) and the inner Authorization of the create example
# (`Basic cHVuLjAx...`: pun.01 with the md5 of "123").
DOCS_GATEWAY_USERS = {"store123": "password1234"}
DOCS_INTOUCH_USERS = {"pun.01": "123"}


def sandbox_config() -> sim.SimConfig:
    config = sim.SimConfig()
    config.not_found = set(SANDBOX_NOT_FOUND)
    config.basic_users.update(DOCS_GATEWAY_USERS)
    config.intouch_users.update(DOCS_INTOUCH_USERS)
    return config


# -- the `sandbox` command's options: each bad value is one line naming the flag and what it takes ----------


def parse_share(text: str, flag: str) -> float:
    """A fault rate: a share of calls from 0 to 1 (`0.05`), or a percentage (`5%`)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag} {text!r} is not a share of calls: use a number from 0 to 1 (0.05) or a "
                          "percentage (5%)")
    return value


def parse_rate_limit(text: str) -> tuple[int, float] | None:
    """`--rate-limit`, in the forms of `--rate`: (creates, per seconds) for N/s or N/min, None for 0."""
    try:
        rate = parse_rate(text)
    except ConfigError:
        raise ConfigError(f"--rate-limit {text!r} is not a rate: use N/s or N/min (e.g. 15/s, 100/min), or 0 "
                          "for no limit") from None
    return None if rate.unlimited else (rate.count, rate.period)


def parse_seconds(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < math.inf:
        raise ConfigError(f"{flag} {text!r} is not a number of seconds: use a number from 0 (e.g. 0.3)")
    return value


def parse_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ConfigError(f"--port {text!r} is not a port: use a number from 1 to 65535, or 0 for a free one")
    return value


def sandbox_settings(url: str) -> dict[str, str | None]:
    """Overrides for a ``--sandbox`` run: the connection and every credential, nothing else."""
    return {
        "base_url": url,
        "org_id": sim.SANDBOX_ORG_ID,
        "ui_token": sim.SANDBOX_MAKER_TOKEN,
        "ui_token_file": None,
        "api_user": sim.SANDBOX_API_USER,
        "api_password": sim.SANDBOX_API_PASSWORD,
        "oauth_key": None,
        "oauth_secret": None,
        "oauth_url": None,
        "till_id": sim.SANDBOX_TILL_ID,
        "store_id": sim.SANDBOX_STORE_ID,
        "zone_id": sim.SANDBOX_ZONE_ID,
        "concept_id": sim.SANDBOX_CONCEPT_ID,
        "intouch_host": sim.SANDBOX_INTOUCH_HOST,
        "intouch_user": sim.SANDBOX_INTOUCH_USER,
        "intouch_password": sim.SANDBOX_INTOUCH_PASSWORD,
        "intouch_authorization": None,
    }


# Where the settings checks of a `--sandbox` run think it goes; the simulator's own URL is known only once it
# listens, after the checks.
CHECKED_URL = "http://127.0.0.1"


def as_sent(settings: Settings) -> Settings:
    """The settings a run will send with: a `--sandbox` run's overrides applied, so that it is checked
    like any real run (`--concurrency 0` is refused, not run against the simulator)."""
    if not settings.get("sandbox"):
        return settings
    return settings.replace(**sandbox_settings(CHECKED_URL))


def sandbox_environment(url: str) -> dict[str, str]:
    """The same, as the environment variables a shell would export."""
    env = {}
    for attr, value in sandbox_settings(url).items():
        if value is not None:
            env["BULKSTATUS_" + attr.upper()] = value
    return env
