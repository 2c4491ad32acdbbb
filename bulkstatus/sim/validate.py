"""Shape checks of the create body, as the real `ValidatePayload` step does them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bulkstatus.model import IDENTIFIER_NAMES

INNER_PATH = "/v2/customers/lookup/status"
INNER_METHOD = "PUT"
# The docs contradict each other: the parameter table, every answer and the inner API say PUT, the request
# example says POST. Both are accepted, as the example is documented; an approval of a POST one ends
# "failed" (see app.py), as the inner PUT-only API would refuse it.
INNER_METHODS = (INNER_METHOD, "POST")
PAYLOAD_KEY = "IntouchAPITask-Payload"

INVALID_INPUT = 400  # v2 error code for a missing or mistyped field
INVALID_SOURCE = 8003
INVALID_IDENTIFIER = 8013

_DOCUMENTED_NAMES = frozenset(IDENTIFIER_NAMES.values())
_ENTITY_FIELDS = ("tillId", "storeId", "zoneId", "conceptId")
_QUERY_FIELDS = ("source", "accountId", "use_async", "identifierName", "identifierValue")


class Invalid(Exception):
    """The body breaks the documented shape; `code` is the v2 error code, the message names the field."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CreateBody:
    entity_info: dict[str, Any]
    payload: dict[str, Any]
    identifier_name: str
    identifier_value: str
    label: str
    reason: str


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Invalid(INVALID_INPUT, f"{where}{key} is required and must be an object")
    return value


def _string(parent: dict[str, Any], key: str, where: str, *, non_empty: bool) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise Invalid(INVALID_INPUT, f"{where}{key} is required and must be a string")
    if non_empty and not value.strip():
        raise Invalid(INVALID_INPUT, f"{where}{key} must not be empty")
    return value


def validate_create(body: Any) -> CreateBody:
    """The fields of a valid CUSTOMER-STATUS-CHANGE body; raises Invalid naming the first bad field."""
    if not isinstance(body, dict):
        raise Invalid(INVALID_INPUT, "The request body must be a JSON object")
    entity = _object(body, "entityInfo", "")
    for key in _ENTITY_FIELDS:
        _string(entity, key, "entityInfo.", non_empty=True)
    task = _object(_object(body, "payload", ""), PAYLOAD_KEY, "payload.")
    where = f"payload.{PAYLOAD_KEY}."
    _string(task, "hostname", where, non_empty=True)
    if task.get("path") != INNER_PATH:
        raise Invalid(INVALID_INPUT, f"{where}path must be {INNER_PATH}")
    if task.get("method") not in INNER_METHODS:
        raise Invalid(INVALID_INPUT, f"{where}method must be {INNER_METHOD} (or POST, as one docs example has it)")
    if not isinstance(task.get("pathParams"), dict):
        raise Invalid(INVALID_INPUT, f"{where}pathParams is required and must be an object")
    query = _object(task, "queryParams", where)
    for key in _QUERY_FIELDS:
        _string(query, key, f"{where}queryParams.", non_empty=False)
    if not query["source"].strip():
        raise Invalid(INVALID_SOURCE, "Invalid source: queryParams.source must not be empty")
    name, value = query["identifierName"], query["identifierValue"]
    if name not in _DOCUMENTED_NAMES:
        raise Invalid(
            INVALID_IDENTIFIER,
            f"Invalid identifier: identifierName must be one of {', '.join(sorted(_DOCUMENTED_NAMES))}",
        )
    if not value.strip():
        raise Invalid(INVALID_IDENTIFIER, "Invalid identifier: identifierValue must not be empty")
    inner_body = _object(task, "body", where)
    reason = _string(inner_body, "reason", f"{where}body.", non_empty=True)
    label = _string(inner_body, "label", f"{where}body.", non_empty=True)
    headers = _object(task, "headers", where)
    _string(headers, "Authorization", f"{where}headers.", non_empty=True)
    _string(headers, "content-type", f"{where}headers.", non_empty=True)
    return CreateBody(entity, task, name, value, label, reason)
