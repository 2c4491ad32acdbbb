"""The settings that point a run at the built-in simulator. Every value is a made-up sandbox value."""

from __future__ import annotations

from bulkstatus.sim import config as sim

# Identifier values the sandbox answers with 8015 "customer not found", so that samples/messy.csv shows
# that outcome too.
SANDBOX_NOT_FOUND = frozenset({"919999999999", "ghost@example.com"})


def sandbox_config() -> sim.SimConfig:
    config = sim.SimConfig()
    config.not_found = set(SANDBOX_NOT_FOUND)
    return config


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


def sandbox_environment(url: str) -> dict[str, str]:
    """The same, as the environment variables a shell would export."""
    env = {}
    for attr, value in sandbox_settings(url).items():
        if value is not None:
            env["BULKSTATUS_" + attr.upper()] = value
    return env
