"""Routes and handlers of the simulated request-workflow API, the OAuth endpoint and `/__sim/` controls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from bulkstatus.sim.auth import check_caller, inner_auth_ok
from bulkstatus.sim.listing import parse_query, select
from bulkstatus.sim.monitor import CALL_KEY, SUBJECT_KEY
from bulkstatus.sim.responses import data_response, error_of, json_response, v2_error
from bulkstatus.sim.state import (
    APPROVED,
    FAILED,
    PENDING,
    REJECTED,
    REQUEST_TYPE_VALUE,
    ReceivedCall,
    StoredRequest,
    utc_now,
    uuid1_at,
)
from bulkstatus.sim.validate import INNER_METHOD, Invalid, validate_create

if TYPE_CHECKING:
    from bulkstatus.sim.config import SimConfig
    from bulkstatus.sim.server import Simulator

WORKFLOW = "/api_gateway/v2/request-workflow"
REQUEST_TYPE = "CUSTOMER-STATUS-CHANGE"  # the only request type simulated; others answer 404
NOT_FOUND_CODE = 8015
NOT_AUTHORISED_CODE = 4000
_NO_BODY = object()
# What the inner status change answers when it fails after approval, in the v2 error shape.
INNER_REFUSED = (8015, "Customer not found for the given identifiers")
INNER_AUTH_FAILED = (401, "Intouch API authentication failed: the inner task's Authorization was not accepted")


def _finish(call: ReceivedCall, outcome: str, response: web.Response) -> web.Response:
    call.outcome = outcome
    call.status = response.status
    call.error_code, call.error = error_of(response)
    return response


def _drop(request: web.Request, call: ReceivedCall, outcome: str) -> web.Response:
    """Close the connection without an answer: the client sees the server disconnect."""
    call.outcome = outcome
    if request.transport is not None:
        request.transport.close()
    return web.Response()  # written to a closed transport, so it never reaches the client


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else _NO_BODY
    except orjson.JSONDecodeError:
        return _NO_BODY


def _body_problem(request: web.Request, body: Any) -> web.Response | None:
    if request.content_type != "application/json":
        return v2_error(415, 415, "Content-Type must be application/json")
    if body is _NO_BODY:
        return v2_error(400, 400, "The request body must be JSON")
    return None


def _unknown_type(request_type: str) -> web.Response:
    return v2_error(404, 404, f"Unknown request type {request_type!r}: the simulator serves {REQUEST_TYPE}")


class Handlers:
    """One handler per endpoint; each reads `sim.config` afresh so runtime changes apply at once."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def create(self, request: web.Request) -> web.Response:
        sim, config, faults = self.sim, self.sim.config, self.sim.faults
        body = _parse_json(await request.read())
        request_type = request.match_info["requestType"]
        call = sim.state.record_call(
            CIMultiDict(request.headers), None if body is _NO_BODY else body, request_type, utc_now()
        )
        request[CALL_KEY] = call
        if request_type != REQUEST_TYPE:
            return _finish(call, "not-found", _unknown_type(request_type))
        # Faults, in the order a gateway in front of the service would produce them.
        if config.throttle_rate and faults.chance(config.throttle_rate):
            return _finish(call, "rate-limited", faults.rate_limited(config.retry_after))
        if config.rate_limit is not None and not faults.admit(config.rate_limit, config.rate_limit_period):
            return _finish(call, "rate-limited", faults.rate_limited(config.retry_after))
        if faults.chance(config.drop_before_rate):
            return _drop(request, call, "dropped-before")
        if faults.chance(config.error_rate):
            return _finish(call, "transient-error", faults.transient())
        delay = faults.latency(config.latency)
        if delay > 0:
            await asyncio.sleep(delay)

        caller = check_caller(request.headers, config, sim.tokens)
        if isinstance(caller, web.Response):
            return _finish(call, "rejected", caller)
        problem = _body_problem(request, body)
        if problem is not None:
            return _finish(call, "rejected", problem)
        try:
            fields = validate_create(body)
        except Invalid as exc:
            return _finish(call, "rejected", v2_error(400, exc.code, exc.message))
        if fields.identifier_value in config.always_error:
            return _finish(call, "transient-error", v2_error(503, 4001, "Authorization status unavailable"))
        if fields.identifier_value in config.not_found:
            answer = v2_error(400, NOT_FOUND_CODE, "Customer not found for the given identifiers")
            return _finish(call, "rejected", answer)

        now = sim.now()
        state, end_time, inner = PENDING, None, None
        if config.auto_approve:
            inner = _inner_failure(fields.identifier_value, fields.payload, config)
            state, end_time = (APPROVED if inner is None else FAILED), now
        stored = StoredRequest(
            request_id=uuid1_at(now),
            user_id=caller[0],
            user_name=caller[1],
            request_type=REQUEST_TYPE_VALUE,
            state=state,
            start_time=now,
            end_time=end_time,
            entity_info=fields.entity_info,
            payload=fields.payload,
            identifier_name=fields.identifier_name,
            identifier_value=fields.identifier_value,
            label=fields.label,
            reason=fields.reason,
            stamp_zone_minutes=config.stamp_zone_minutes,
            inner_output=inner,
        )
        sim.state.add(stored)
        call.request_id = stored.request_id
        if faults.chance(config.drop_after_rate):
            return _drop(request, call, "dropped-after")
        return _finish(call, "accepted", data_response(stored.to_api()))

    async def get_one(self, request: web.Request) -> web.Response:
        sim = self.sim
        sim.state.count("get_calls")
        request[SUBJECT_KEY] = request.match_info["requestId"]
        caller = check_caller(request.headers, sim.config, sim.tokens)
        if isinstance(caller, web.Response):
            return caller
        stored = sim.state.get(request.match_info["requestId"])
        if stored is None:
            return v2_error(404, 404, "No request with this requestId")
        return data_response(stored.to_api())

    async def list_requests(self, request: web.Request) -> web.Response:
        sim = self.sim
        sim.state.count("list_calls")
        caller = check_caller(request.headers, sim.config, sim.tokens)
        if isinstance(caller, web.Response):
            return caller
        if sim.faults.chance(sim.config.list_error_rate):
            return v2_error(503, 503, "Service temporarily unavailable")
        delay = sim.faults.latency(sim.config.list_latency)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            query = parse_query(request.query)
        except ValueError as exc:
            return v2_error(400, 400, str(exc))
        return json_response(select(sim.state.accepted(), query))

    async def decide(self, request: web.Request) -> web.Response:
        """Approve or reject a pending request (the checker's PUT)."""
        sim, config = self.sim, self.sim.config
        sim.state.count("approve_calls")
        request_type = request.match_info["requestType"]
        if request_type != REQUEST_TYPE:
            return _unknown_type(request_type)
        caller = check_caller(request.headers, config, sim.tokens)
        if isinstance(caller, web.Response):
            return caller
        body = _parse_json(await request.read())
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            request[SUBJECT_KEY] = body["requestId"]
        problem = _body_problem(request, body)
        if problem is not None:
            return problem
        if caller[0] not in config.checkers:
            message = "Access denied: this user does not have CanCheckRequest access"
            return v2_error(403, NOT_AUTHORISED_CODE, message)
        try:
            request_id, decision, message = _decision(body)
        except Invalid as exc:
            return v2_error(400, exc.code, exc.message)
        stored = sim.state.get(request_id)
        if stored is None:
            return v2_error(404, 404, "No request with this requestId")
        if stored.user_id == caller[0]:
            text = "The maker of a request cannot approve or reject it: a different user must check it"
            return v2_error(403, NOT_AUTHORISED_CODE, text)
        if stored.state != PENDING:
            return v2_error(400, 400, f"Request is not awaiting a decision: its state is {stored.state}")
        if decision == "rejected":
            final, inner = REJECTED, None
        else:
            inner = _inner_failure(stored.identifier_value, stored.payload, config)
            final = APPROVED if inner is None else FAILED
        admin_payload = {"actionDecision": decision, "actionMessage": message}
        stored = sim.state.decide(request_id, final, sim.now(), caller[0], message, admin_payload, inner)
        return data_response(stored.to_api())

    async def oauth_generate(self, request: web.Request) -> web.Response:
        sim = self.sim
        sim.state.count("oauth_calls")
        body = _parse_json(await request.read())
        key = body.get("key") if isinstance(body, dict) else None
        secret = body.get("secret") if isinstance(body, dict) else None
        if not isinstance(key, str) or not isinstance(secret, str):
            error = {"code": 400, "message": "Send a JSON body with string fields key and secret"}
            return json_response({"data": None, "errors": [error]}, 400)
        expected = sim.config.oauth_clients.get(key)
        if expected is None or expected != secret:
            error = {"code": 401, "message": "Invalid key or secret"}
            return json_response({"data": None, "errors": [error]}, 401)
        ttl = sim.config.oauth_ttl_seconds
        token = sim.tokens.issue(ttl)
        return json_response({"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None})

    # -- /__sim/ controls ----------------------------------------------------------------------------

    async def sim_accepted(self, request: web.Request) -> web.Response:
        return json_response([r.summary() for r in self.sim.state.accepted()])

    async def sim_received(self, request: web.Request) -> web.Response:
        """The create calls received, refused ones included, paged like the API's list (limit, PageNo,
        sortOrder: newest first by default)."""
        try:
            query = parse_query(request.query)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        calls, total = self.sim.state.received_page(query.page, query.limit, query.descending)
        pagination = {"totalElements": total, "totalPages": -(-total // query.limit),
                      "numberOfElements": len(calls), "number": query.page}
        return json_response({"data": [call.summary() for call in calls], "pagination": pagination})

    async def sim_stats(self, request: web.Request) -> web.Response:
        return json_response(self.sim.state.stats())

    async def sim_get_config(self, request: web.Request) -> web.Response:
        return json_response(self.sim.config.public_view())

    async def sim_set_config(self, request: web.Request) -> web.Response:
        changes = _parse_json(await request.read())
        if not isinstance(changes, dict):
            return json_response({"error": "send a JSON object of SimConfig fields"}, 400)
        try:
            self.sim.apply_config(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.sim.config.public_view())


def _inner_failure(identifier_value: str, payload: dict[str, Any], config: SimConfig) -> dict[str, Any] | None:
    """The inner status change's error answer when it would fail after approval, else None."""
    if identifier_value in config.fail_on_approve:
        code, message = INNER_REFUSED
    elif payload.get("method") != INNER_METHOD:  # the docs' create example says POST; the inner API is PUT
        code, message = 405, f"Intouch API {payload.get('method')!r} is not allowed here: it takes {INNER_METHOD}"
    elif not inner_auth_ok(payload.get("headers", {}).get("Authorization"), config):
        code, message = INNER_AUTH_FAILED
    else:
        return None
    return {"errors": [{"status": False, "code": code, "message": message}], "warnings": []}


def _decision(body: Any) -> tuple[str, str, str]:
    """(requestId, actionDecision, actionMessage) of an approve/reject body; raises Invalid."""
    if not isinstance(body, dict):
        raise Invalid(400, "The request body must be a JSON object")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise Invalid(400, "requestId is required and must be a string")
    if body.get("actionName") != "AdminTask":
        raise Invalid(400, "actionName must be AdminTask")
    payload = body.get("payload")
    task = payload.get("AdminTask-Payload") if isinstance(payload, dict) else None
    if not isinstance(task, dict):
        raise Invalid(400, "payload.AdminTask-Payload is required and must be an object")
    decision = task.get("actionDecision")
    if decision not in ("approved", "rejected"):
        raise Invalid(400, "payload.AdminTask-Payload.actionDecision must be approved or rejected")
    message = task.get("actionMessage", "")
    if not isinstance(message, str):
        raise Invalid(400, "payload.AdminTask-Payload.actionMessage must be a string")
    return request_id, decision, message


def build_app(sim: Simulator) -> web.Application:
    handlers = Handlers(sim)
    # Without a monitor no middleware runs: tests and benchmarks pay nothing for the sandbox's terminal.
    middlewares = [sim.monitor.middleware()] if sim.monitor is not None else []
    app = web.Application(client_max_size=1024**2, middlewares=middlewares)
    # Route names are the monitor's kinds of call; "sim-" ones are not counted.
    app.router.add_get(f"{WORKFLOW}/requests", handlers.list_requests, name="list")
    app.router.add_get(f"{WORKFLOW}/requests/{{requestId}}", handlers.get_one, name="get")
    app.router.add_post(f"{WORKFLOW}/{{requestType}}", handlers.create, name="create")
    app.router.add_put(f"{WORKFLOW}/{{requestType}}", handlers.decide, name="decide")
    app.router.add_post("/v3/oauth/token/generate", handlers.oauth_generate, name="oauth")
    app.router.add_get("/__sim/accepted", handlers.sim_accepted, name="sim-accepted")
    app.router.add_get("/__sim/received", handlers.sim_received, name="sim-received")
    app.router.add_get("/__sim/stats", handlers.sim_stats, name="sim-stats")
    app.router.add_get("/__sim/config", handlers.sim_get_config, name="sim-config")
    app.router.add_post("/__sim/config", handlers.sim_set_config, name="sim-set-config")
    return app
