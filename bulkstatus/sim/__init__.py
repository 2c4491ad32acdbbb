"""A local simulator of Capillary's request-workflow API, served over real HTTP on loopback.

Used by the tests and by `bulkstatus sandbox`; `SimConfig()` is the sandbox.

Where the docs leave behaviour open, the simulator chooses (and may differ from the real platform):
- Errors use the v2 shape. Gateway auth, unknown UI token and wrong/missing org all answer 401 (org with
  code 1064, the others with code 401); a non-JSON Content-Type 415; a bad body 400 (code 8013 for the
  identifier, 8003 for an empty source, 400 otherwise); a customer in `not_found` 400 with code 8015.
- Only CUSTOMER-STATUS-CHANGE is served (exact spelling in the path); other request types answer 404.
- Approve/reject: no CanCheckRequest, or the maker deciding their own request, is 403 with code 4000; a
  request no longer in AdminTask is 400; an unknown requestId 404. The answer's details gain the
  `AdminTask-Payload` of the decision. An approval ends "failed" for `fail_on_approve` values (the inner
  call answering 8015) and when the payload's inner Authorization is not Basic of an `intouch_users` entry
  (401); a failed request's details then hold that inner error answer as `IntouchAPITask_Output`, in the v2
  error shape (undocumented: named like the documented `ValidatePayload_Output`).
- List: PageNo is 0-based; limit defaults to 10 and must be 1..500; the default order is newest first.
- Times are naive UTC, "YYYY-MM-DDTHH:MM:SS". Retry-After is whole seconds ("2") or a decimal ("0.05").
- The inner method may be PUT or POST (the docs' request example has POST); a POST one's approval ends
  "failed", as the PUT-only inner API would refuse it.
- Rate limit: at most `rate_limit` creates in any `rate_limit_period` seconds (a sliding window).
- Control endpoints: GET /__sim/accepted, GET /__sim/received (paged like the list), GET /__sim/stats, GET
  and POST /__sim/config. A `Monitor` (bulkstatus sandbox's terminal) counts every other call served.
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
