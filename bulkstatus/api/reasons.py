"""Why a request ended ``rejected`` or ``failed``, read from the request object the API answers.

One place is documented: a decided request's ``details`` hold the decision's ``AdminTask-Payload``
(``actionDecision``, ``actionMessage``), so the checker's message is why a request was rejected. Why an
approved request then *failed* is not documented. The details name each step's result ``<Step>_Output``
(``ValidateMakerAccess_Output``, ``ValidatePayload_Output``), so the inner call's result is looked for as
``IntouchAPITask_Output`` first (the simulator answers the inner API's v2 error shape there), then any
other ``*_Output`` that holds an error, then fields of the request itself (``reason``, ``comments``,
``error``, ``errors``, ``message``). ``IntouchAPITask-Payload`` is never read: it holds the inner
Authorization header.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

REASON_STATES = frozenset({"rejected", "failed"})
INNER_OUTPUT = "IntouchAPITask_Output"
DECISION = "AdminTask-Payload"
_REQUEST_FIELDS = ("reason", "comments", "comment", "error", "errors", "message")
_TEXT_KEYS = ("message", "error", "reason", "description", "comment", "comments")
MAX_CHARS = 300


def error_text(value: Any) -> str:
    """The error a value holds, on one line: a string, the v2 ``errors`` list or an object with a message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return next((text for text in map(error_text, value) if text), "")
    if not isinstance(value, Mapping):
        return ""
    if "errors" in value:
        return error_text(value["errors"])
    for key in _TEXT_KEYS:
        text = error_text(value.get(key))
        if text:
            code = value.get("code")
            return f"{text} (code {code})" if isinstance(code, int | str) and str(code) else text
    return ""


def _candidates(item: Mapping[str, Any], state: str) -> Iterator[Any]:
    details = item.get("details")
    details = details if isinstance(details, Mapping) else {}
    decision = details.get(DECISION)
    if state == "rejected" and isinstance(decision, Mapping):
        yield decision.get("actionMessage")
    yield details.get(INNER_OUTPUT)
    for key, value in details.items():
        if key != INNER_OUTPUT and isinstance(key, str) and key.endswith(("_Output", "-Output")):
            yield value
    for key in _REQUEST_FIELDS:
        yield item.get(key)


def request_reason(item: Mapping[str, Any]) -> str:
    """Why the request is ``rejected`` or ``failed`` when the object says so; "" otherwise (or for others)."""
    state = item.get("state")
    if state not in REASON_STATES:
        return ""
    for candidate in _candidates(item, str(state)):
        # One line, no control characters: it is printed on a terminal and written to a CSV cell.
        text = "".join(ch for ch in " ".join(error_text(candidate).split()) if ch.isprintable())
        if text:
            return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 3] + "..."
    return ""
