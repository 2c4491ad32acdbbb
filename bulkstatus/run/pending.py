"""The pending check before a run sends: which customers already have a request waiting for a checker.

A nightly job re-run on the same list, or a file re-run after a partial failure, would otherwise file a
second request for a customer whose first one is still ``AdminTask``. Before the first row is sent the
run lists every pending CUSTOMER-STATUS-CHANGE request (any maker, any date), paged, and keeps an index
``(identifierName, identifierValue, label) -> requestId``. A row with the same key is not sent: its
outcome is ``pending-exists`` with that requestId. The customer is compared as the duplicate check within
a file compares it (``duplicates.customer_key``: emails in any letter case, mobiles by their digits), the
label exactly.

Size: one entry is a tuple of three short strings and a requestId, about 0.5 KB, so 100,000 pending
requests take some 50 MB; fine for the pending queue of one org, which a checker works through by hand.

Paging a filtered list while checkers work is not a snapshot: a request approved during the pass drops
out and moves later ones up a page, so one could be skipped. When ``totalElements`` changes during a pass
the pass is repeated (at most ``PASSES`` times), merging what each pass saw; a request decided meanwhile
stays in the index, which only skips a row whose change was just approved anyway.
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from bulkstatus.api.bodies import REQUEST_TYPE
from bulkstatus.api.calls import Caller
from bulkstatus.api.listing import PENDING, ListUnavailable, list_pages
from bulkstatus.errors import RunAborted
from bulkstatus.input.duplicates import customer_key
from bulkstatus.run.control import StopControl
from bulkstatus.run.doubt import Key, request_key

log = logging.getLogger(__name__)
PendingIndex = dict[Key, str]
PASSES = 3


def pending_key(key: Key) -> Key:
    """How a row's key and a pending request's are compared: the same customer, the same label."""
    name, value = customer_key(key[0], key[1])
    return name, value, key[2]


async def pending_index(caller: Caller, page_size: int) -> PendingIndex:
    """Every pending request of the type, by key; the oldest one when a key has several."""
    params = {"requestType": REQUEST_TYPE, "states": PENDING, "sortBy": "startDate", "sortOrder": "asc"}
    index: PendingIndex = {}
    for _ in range(PASSES):
        totals: set[int] = set()
        async with aclosing(list_pages(caller, params, page_size)) as pages:
            async for items, _pages, total in pages:
                totals.add(total)
                for item in items:
                    key = request_key(item)
                    request_id = item.get("requestId")
                    if key is not None and request_id and item.get("state", PENDING) == PENDING:
                        index.setdefault(pending_key(key), str(request_id))
        if len(totals) <= 1:
            break
    return index


async def pending_check(caller: Caller, stop: StopControl, page_size: int) -> PendingIndex:
    """The index for a run, on the run's pacer; a failure aborts the run before anything is sent."""
    calls_before = caller.total_calls
    try:
        index = await pending_index(caller, page_size)
    except ListUnavailable as exc:
        stop.abort(f"pending check: {exc}, or pass --no-pending-check to send without it")
        return {}
    except RunAborted as exc:  # the policy's own line says what to fix (credentials, base URL, access)
        # Skipping the check helps only when the list endpoint itself is the problem.
        hint = ", or pass --no-pending-check to send without it" if exc.cause == "endpoint" else ""
        stop.abort(f"pending check: {exc}{hint}")
        return {}
    log.info("pending check: %d pending %s request(s) found in %d call(s)", len(index), REQUEST_TYPE,
             caller.total_calls - calls_before)
    return index
