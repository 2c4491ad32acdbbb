"""Capillary's documented examples, verbatim: the bodies a user may paste, and the answers' shapes.

From the "Change customer status request" page (the create body and its 200 answer) and the facts gathered
from the request-workflow, OAuth and error pages (the decision body, the OAuth body and answer, the list
answer, the v2 error, the gateway's Basic example). Angle brackets in `hostname` are the page's own.
"""

from __future__ import annotations

from typing import Any

CREATE_REQUEST: dict[str, Any] = {
    "entityInfo": {
        "tillId": "50682289",
        "storeId": "50682288",
        "zoneId": "50682286",
        "conceptId": "50678331",
    },
    "payload": {
        "IntouchAPITask-Payload": {
            "hostname": "<https://eu.api.capillarytech.com>",
            "path": "/v2/customers/lookup/status",
            "method": "POST",
            "pathParams": {},
            "queryParams": {
                "source": "INSTORE",
                "accountId": "",
                "use_async": "false",
                "identifierName": "mobile",
                "identifierValue": "919780375690",
            },
            "body": {"reason": "testing", "label": "Suspended"},
            "headers": {
                "Authorization": "Basic cHVuLjAxOjIwMmNiOTYyYWM1OTA3NWI5NjRiMDcxNTJkMjM0Yjcw",
                "content-type": "application/json",
            },
        }
    },
}

CREATE_ANSWER_200: dict[str, Any] = {
    "data": {
        "requestId": "113cff87-62a5-11ee-aa6d-0aaee4e533d2",
        "userId": 232134,
        "userName": "tomswayer@tipent.com",
        "requestType": "customer-status-change",
        "state": "AdminTask",
        "startTime": "2023-10-04T16:29:19",
        "endTime": None,
        "details": {
            "IntouchAPITask-Payload": {
                "hostname": "<https://crm-nightly-new.cc.capillarytech.com>",
                "path": "/v2/customers/lookup/status",
                "method": "PUT",
                "pathParams": {},
                "queryParams": {
                    "source": "INSTORE",
                    "accountId": "",
                    "use_async": "false",
                    "identifierName": "mobile",
                    "identifierValue": "919780375690",
                },
                "body": {"reason": "testing", "label": "Suspended"},
                "headers": {
                    "Authorization": "Basic cHVuLjAxOjIwMmNiOTYyYWM1OTA3NWI5NjRiMDcxNTJkMjM0Yjcw",
                    "content-type": "application/json",
                },
            },
            "ValidateMakerAccess_Output": True,
            "ValidatePayload_Output": True,
        },
    }
}


def decision_request(request_id: str, decision: str) -> dict[str, Any]:
    return {"requestId": request_id, "actionName": "AdminTask",
            "payload": {"AdminTask-Payload": {"actionDecision": decision, "actionMessage": "..."}}}


OAUTH_ANSWER: dict[str, Any] = {"data": {"accessToken": "<jwt>", "ttlSeconds": 300}, "errors": None}
LIST_PAGINATION_KEYS = {"totalElements", "totalPages", "numberOfElements", "number"}
ERROR_8015: dict[str, Any] = {
    "errors": [{"status": False, "code": 8015, "message": "Customer not found for the given identifiers"}],
    "warnings": [],
}
# "store123 / Pass123 -> c3RvcmUx...": the header as printed (it is the md5 of "password1234", not of Pass123).
GATEWAY_BASIC = "Basic c3RvcmUxMjM6YmRjODdiOWM4OTRkYTUxNjgwNTllMDBlYmZmYjkwNzc="


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys kept, scalars replaced by their type's name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return "null" if value is None else type(value).__name__
