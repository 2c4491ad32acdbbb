"""A local simulator of Capillary's request-workflow API, served over real HTTP on loopback.

Used by the tests and by `bulkstatus sandbox`; `SimConfig()` is the sandbox.
"""

from bulkstatus.sim.config import (
    SANDBOX_API_PASSWORD,
    SANDBOX_API_USER,
    SANDBOX_CHECKER_TOKEN,
    SANDBOX_CONCEPT_ID,
    SANDBOX_INTOUCH_HOST,
    SANDBOX_INTOUCH_PASSWORD,
    SANDBOX_INTOUCH_USER,
    SANDBOX_MAKER_TOKEN,
    SANDBOX_OAUTH_KEY,
    SANDBOX_OAUTH_SECRET,
    SANDBOX_ORG_ID,
    SANDBOX_STORE_ID,
    SANDBOX_TILL_ID,
    SANDBOX_ZONE_ID,
    SimConfig,
    basic_auth_value,
)
from bulkstatus.sim.server import Simulator, serve_forever
from bulkstatus.sim.state import ReceivedCall, SimState, StoredRequest

__all__ = [
    "SANDBOX_API_PASSWORD",
    "SANDBOX_API_USER",
    "SANDBOX_CHECKER_TOKEN",
    "SANDBOX_CONCEPT_ID",
    "SANDBOX_INTOUCH_HOST",
    "SANDBOX_INTOUCH_PASSWORD",
    "SANDBOX_INTOUCH_USER",
    "SANDBOX_MAKER_TOKEN",
    "SANDBOX_OAUTH_KEY",
    "SANDBOX_OAUTH_SECRET",
    "SANDBOX_ORG_ID",
    "SANDBOX_STORE_ID",
    "SANDBOX_TILL_ID",
    "SANDBOX_ZONE_ID",
    "ReceivedCall",
    "SimConfig",
    "SimState",
    "Simulator",
    "StoredRequest",
    "basic_auth_value",
    "serve_forever",
]
