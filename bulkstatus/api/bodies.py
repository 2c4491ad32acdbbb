"""The maker request for one row: body and headers, exactly as the API page describes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from bulkstatus.model import Row, canonical_name
from bulkstatus.settings import Settings

CREATE_PATH = "/api_gateway/v2/request-workflow/CUSTOMER-STATUS-CHANGE"
REQUESTS_PATH = "/api_gateway/v2/request-workflow/requests"
REQUEST_TYPE = "CUSTOMER-STATUS-CHANGE"
INNER_PATH = "/v2/customers/lookup/status"
# The parameter table, the curl sample and every response say PUT; one example says POST. The inner
# API (Update customer status) is PUT /v2/customers/lookup/status, so PUT it is.
INNER_METHOD = "PUT"
MASK = "***"


def basic_authorization(user: str, password: str) -> str:
    """Capillary's Basic form: base64(user + ":" + md5_hex(password))."""
    digest = hashlib.md5(password.encode("utf-8")).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{digest}".encode()).decode("ascii")


def inner_authorization(settings: Settings) -> str:
    raw = settings.get("intouch-authorization")
    if raw:
        return str(raw)
    return basic_authorization(str(settings.get("intouch-user")), str(settings.get("intouch-password")))


class BodyBuilder:
    """Builds each row's body around the parts that are the same for every row."""

    __slots__ = ("_authorization", "_entity", "_host", "_query_base")

    def __init__(self, settings: Settings, authorization: str | None = None) -> None:
        self._entity = {
            "tillId": str(settings.get("till-id") or ""),
            "storeId": str(settings.get("store-id") or ""),
            "zoneId": str(settings.get("zone-id") or ""),
            "conceptId": str(settings.get("concept-id") or ""),
        }
        self._host = str(settings.get("intouch-host") or "")
        self._query_base = {
            "source": str(settings.get("source")),
            "accountId": str(settings.get("account-id") or ""),
            "use_async": "true" if settings.get("use-async") else "false",
        }
        self._authorization = authorization if authorization is not None else inner_authorization(settings)

    def body(self, row: Row) -> dict[str, Any]:
        name = canonical_name(row.identifier_name)
        return {
            "entityInfo": dict(self._entity),
            "payload": {
                "IntouchAPITask-Payload": {
                    "hostname": self._host,
                    "path": INNER_PATH,
                    "method": INNER_METHOD,
                    "pathParams": {},
                    "queryParams": {
                        **self._query_base,
                        "identifierName": name,
                        "identifierValue": row.identifier_value,
                    },
                    "body": {"reason": row.reason, "label": row.label},
                    "headers": {"Authorization": self._authorization, "content-type": "application/json"},
                }
            },
        }

    def masked(self) -> BodyBuilder:
        """A builder whose bodies carry ``***`` in place of the inner Authorization (for requests.jsonl)."""
        clone = object.__new__(BodyBuilder)
        clone._entity, clone._host, clone._query_base = self._entity, self._host, self._query_base
        clone._authorization = MASK
        return clone
