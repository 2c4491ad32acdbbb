"""JSON answers in the shapes the API uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def v2_error(status: int, code: int, message: str) -> web.Response:
    """The documented v2 error shape: `{"errors": [{"status": false, "code", "message"}], "warnings": []}`."""
    body = {"errors": [{"status": False, "code": code, "message": message}], "warnings": []}
    return json_response(body, status)


def data_response(data: Any) -> web.Response:
    return json_response({"data": data})


def error_of(response: web.StreamResponse) -> tuple[int | None, str | None]:
    """The first error's (code, message) of a JSON error answer we built (v2 or OAuth shape), else Nones."""
    body = getattr(response, "body", None)
    if response.status < 400 or not isinstance(body, bytes) or not body:
        return None, None
    try:
        errors = orjson.loads(body).get("errors")
        first = errors[0]
        code, message = first.get("code"), first.get("message")
    except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError, KeyError):
        return None, None
    return (code if isinstance(code, int) else None), (message if isinstance(message, str) else None)
