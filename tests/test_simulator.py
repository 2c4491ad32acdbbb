"""The Capillary simulator over real HTTP on loopback: shapes, auth, validation, faults, workflow."""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from simhelpers import SimulatorThread, serving  # tests/ is on sys.path (pytest's default import mode)

from bulkstatus.sim import (
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
    Simulator,
    basic_auth_value,
    serve_forever,
)

CREATE = "/api_gateway/v2/request-workflow/CUSTOMER-STATUS-CHANGE"
REQUESTS = "/api_gateway/v2/request-workflow/requests"
OAUTH = "/v3/oauth/token/generate"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")

AsyncTest = Callable[..., Coroutine[Any, Any, None]]


def aiotest(fn: AsyncTest) -> Callable[..., None]:
    """Run an async test function on a fresh event loop (no pytest-asyncio needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now




def make_body(
    value: str = "919780375690",
    *,
    name: str = "mobile",
    method: str = "PUT",
    label: str = "Suspended",
    reason: str = "testing",
) -> dict[str, Any]:
    """A create body exactly as the seed page documents it (with method PUT)."""
    return {
        "entityInfo": {
            "tillId": SANDBOX_TILL_ID,
            "storeId": SANDBOX_STORE_ID,
            "zoneId": SANDBOX_ZONE_ID,
            "conceptId": SANDBOX_CONCEPT_ID,
        },
        "payload": {
            "IntouchAPITask-Payload": {
                "hostname": SANDBOX_INTOUCH_HOST,
                "path": "/v2/customers/lookup/status",
                "method": method,
                "pathParams": {},
                "queryParams": {
                    "source": "INSTORE",
                    "accountId": "",
                    "use_async": "false",
                    "identifierName": name,
                    "identifierValue": value,
                },
                "body": {"reason": reason, "label": label},
                "headers": {
                    "Authorization": basic_auth_value(SANDBOX_INTOUCH_USER, SANDBOX_INTOUCH_PASSWORD),
                    "content-type": "application/json",
                },
            }
        },
    }


def make_headers(token: str = SANDBOX_MAKER_TOKEN, **extra: str) -> dict[str, str]:
    headers = {
        "X-CAP-API-AUTH-ORG-ID": SANDBOX_ORG_ID,
        "X-CAP-UI-AUTH-TOKEN": token,
        "Authorization": basic_auth_value(SANDBOX_API_USER, SANDBOX_API_PASSWORD),
        "Accept": "application/json",
    }
    headers.update(extra)
    return headers


def decision_body(request_id: str, decision: str = "approved") -> dict[str, Any]:
    return {
        "requestId": request_id,
        "actionName": "AdminTask",
        "payload": {"AdminTask-Payload": {"actionDecision": decision, "actionMessage": "checked"}},
    }


async def create(
    session: aiohttp.ClientSession, body: dict[str, Any] | None = None, **headers: str
) -> tuple[int, Any]:
    async with session.post(CREATE, json=body or make_body(), headers=make_headers(**headers)) as resp:
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if resp.content_type == "application/json" else raw


async def decide(
    session: aiohttp.ClientSession, request_id: str, decision: str = "approved", token: str = ""
) -> tuple[int, Any]:
    headers = make_headers(token or SANDBOX_CHECKER_TOKEN)
    async with session.put(CREATE, json=decision_body(request_id, decision), headers=headers) as resp:
        return resp.status, await resp.json()


def v2_error(code: int, message: str) -> dict[str, Any]:
    return {"errors": [{"status": False, "code": code, "message": message}], "warnings": []}


# -- create -------------------------------------------------------------------------------------------


@aiotest
async def test_create_answers_the_documented_shape() -> None:
    """A valid create answers 200 with exactly the documented request object and is recorded."""
    async with serving() as (sim, session):
        sent = make_body()
        status, answer = await create(session, sent)
    assert status == 200
    assert list(answer) == ["data"]
    data = answer["data"]
    assert set(data) == {
        "requestId",
        "userId",
        "userName",
        "requestType",
        "state",
        "startTime",
        "endTime",
        "details",
    }
    assert UUID_RE.match(data["requestId"])
    assert (data["userId"], data["userName"]) == (1001, "maker@sandbox.local")
    assert (data["requestType"], data["state"], data["endTime"]) == (
        "customer-status-change",
        "AdminTask",
        None,
    )
    assert TIME_RE.match(data["startTime"])
    assert data["details"] == {
        "IntouchAPITask-Payload": sent["payload"]["IntouchAPITask-Payload"],
        "ValidateMakerAccess_Output": True,
        "ValidatePayload_Output": True,
    }
    [stored] = sim.state.accepted()
    assert (stored.request_id, stored.identifier_name, stored.identifier_value) == (
        data["requestId"],
        "mobile",
        "919780375690",
    )
    assert sim.state.received_bodies() == [sent]
    headers = sim.state.received_headers()[0]
    assert headers["x-cap-ui-auth-token"] == SANDBOX_MAKER_TOKEN
    assert headers["X-CAP-API-AUTH-ORG-ID"] == SANDBOX_ORG_ID
    assert sim.state.create_calls == 1


@aiotest
async def test_auto_approve_answers_approved() -> None:
    """With auto_approve the create answer already says approved, with an endTime."""
    async with serving(SimConfig(auto_approve=True, fail_on_approve={"2"})) as (_, session):
        _, approved = await create(session, make_body("1"))
        _, failed = await create(session, make_body("2"))
    assert approved["data"]["state"] == "approved"
    assert TIME_RE.match(approved["data"]["endTime"])
    assert failed["data"]["state"] == "failed"


BAD_BASIC = basic_auth_value(SANDBOX_API_USER, "wrong-password")


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        ({"Authorization": ""}, 401, "Authorization was not accepted"),
        ({"Authorization": BAD_BASIC}, 401, "Authorization was not accepted"),
        ({"X-CAP-API-AUTH-ORG-ID": "999"}, 1064, "Invalid org"),
        ({"X-CAP-API-AUTH-ORG-ID": None}, 1064, "X-CAP-API-AUTH-ORG-ID is missing"),
        ({"X-CAP-UI-AUTH-TOKEN": "stale-token-value"}, 401, "X-CAP-UI-AUTH-TOKEN was not accepted"),
        ({"X-CAP-UI-AUTH-TOKEN": None}, 401, "X-CAP-UI-AUTH-TOKEN is missing"),
        ({"Authorization": None}, 401, "Gateway authentication missing"),
        ({"Authorization": None, "X-CAP-API-OAUTH-TOKEN": "made-up"}, 401, "X-CAP-API-OAUTH-TOKEN was not"),
    ],
)
@aiotest
async def test_auth_failures_answer_401_without_echoing_secrets(
    change: dict[str, str | None], code: int, fragment: str
) -> None:
    """Each auth failure is a 401 v2 error naming the header, never its value, and nothing is recorded."""
    headers = make_headers()
    for key, value in change.items():
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    async with serving() as (sim, session), session.post(CREATE, json=make_body(), headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 401
        assert sim.state.accepted() == []
    [error] = answer["errors"]
    assert (error["status"], error["code"], answer["warnings"]) == (False, code, [])
    assert fragment in error["message"]
    text = orjson.dumps(answer).decode()
    for secret in ("stale-token-value", "made-up", BAD_BASIC.split()[1], SANDBOX_MAKER_TOKEN):
        assert secret not in text


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (make_body(method="GET"), 400, "method must be PUT"),
        (make_body(name="Mobile"), 8013, "identifierName must be one of"),
        (make_body(name="phone"), 8013, "identifierName must be one of"),
        (make_body(""), 8013, "identifierValue must not be empty"),
        (make_body(label=""), 400, "body.label must not be empty"),
        (make_body(reason=" "), 400, "body.reason must not be empty"),
    ],
)
@aiotest
async def test_body_validation_rejects_bad_fields(body: dict[str, Any], code: int, fragment: str) -> None:
    """A body off the documented shape is a 400 v2 error naming the field; nothing is recorded."""
    async with serving() as (sim, session):
        status, answer = await create(session, body)
        assert sim.state.accepted() == []
        assert sim.state.received()[0].outcome == "rejected"
    assert status == 400
    assert answer["errors"][0]["code"] == code
    assert fragment in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda b: b["entityInfo"].pop("tillId"), "entityInfo.tillId is required"),
        (lambda b: b["entityInfo"].update(storeId=50682288), "entityInfo.storeId is required and must be"),
        (lambda b: b["payload"].pop("IntouchAPITask-Payload"), "IntouchAPITask-Payload is required"),
        (lambda b: b["payload"]["IntouchAPITask-Payload"].update(path="/v2/customers"), "path must be"),
        (lambda b: b["payload"]["IntouchAPITask-Payload"].update(pathParams=None), "pathParams"),
        (
            lambda b: b["payload"]["IntouchAPITask-Payload"]["queryParams"].update(use_async=False),
            "use_async",
        ),
        (lambda b: b["payload"]["IntouchAPITask-Payload"]["headers"].pop("content-type"), "content-type"),
        (lambda b: b["payload"]["IntouchAPITask-Payload"].pop("hostname"), "hostname"),
    ],
)
@aiotest
async def test_missing_or_mistyped_fields_are_named(mutate: Callable[[Any], object], fragment: str) -> None:
    """Missing or non-string fields answer 400 with the field's path in the message."""
    body = make_body()
    mutate(body)
    async with serving() as (_, session):
        status, answer = await create(session, body)
    assert status == 400
    assert fragment in answer["errors"][0]["message"]


@aiotest
async def test_wrong_content_type_and_unknown_request_type() -> None:
    """A non-JSON content type answers 415; an unknown request type in the path answers 404."""
    async with serving() as (sim, session):
        data = orjson.dumps(make_body())
        headers = make_headers(**{"Content-Type": "text/plain"})
        async with session.post(CREATE, data=data, headers=headers) as resp:
            assert resp.status == 415
        path = "/api_gateway/v2/request-workflow/POINTS-REDEMPTION"
        async with session.post(path, json=make_body(), headers=make_headers()) as resp:
            assert resp.status == 404
            assert "Unknown request type" in (await resp.json())["errors"][0]["message"]
        assert sim.state.accepted() == []


@aiotest
async def test_not_found_customer_answers_8015() -> None:
    """An identifierValue in not_found answers 400 with the documented 8015 body."""
    async with serving(SimConfig(not_found={"404404"})) as (sim, session):
        status, answer = await create(session, make_body("404404"))
        ok_status, _ = await create(session, make_body("200200"))
        assert [r.identifier_value for r in sim.state.accepted()] == ["200200"]
    assert (status, ok_status) == (400, 200)
    assert answer == v2_error(8015, "Customer not found for the given identifiers")


# -- faults -------------------------------------------------------------------------------------------


@aiotest
async def test_drop_before_closes_without_recording() -> None:
    """drop_before: the client gets a disconnect and the simulator created nothing."""
    async with serving(SimConfig(drop_before_rate=1.0)) as (sim, session):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await create(session)
        assert sim.state.accepted() == []
        assert [c.outcome for c in sim.state.received()] == ["dropped-before"]
        assert sim.state.received()[0].status is None


@aiotest
async def test_drop_after_records_then_closes() -> None:
    """drop_after: the request is created, yet the client gets a disconnect instead of a 200."""
    async with serving(SimConfig(drop_after_rate=1.0)) as (sim, session):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await create(session)
        [stored] = sim.state.accepted()
        assert stored.state == "AdminTask"
        sim.config.drop_after_rate = 0.0
        status, _ = await create(session, make_body("2"))  # the session recovers on a new connection
        assert status == 200


@aiotest
async def test_rate_limit_answers_429_with_retry_after() -> None:
    """Above rate_limit creates in a sliding second: 429 with Retry-After; the window slides on."""
    clock = FakeClock()
    config = SimConfig(rate_limit=3, retry_after=0.05, seed=1)
    async with serving(config, clock=clock) as (sim, session):
        statuses = [(await create(session, make_body(str(i))))[0] for i in range(3)]
        async with session.post(CREATE, json=make_body("x"), headers=make_headers()) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "0.05"
        clock.now += 0.5
        assert (await create(session, make_body("y")))[0] == 429
        clock.now += 0.51
        assert (await create(session, make_body("z")))[0] == 200
        sim.config.retry_after = None
        sim.config.rate_limit = 1
        async with session.post(CREATE, json=make_body("w"), headers=make_headers()) as resp:
            assert resp.status == 429
            assert "Retry-After" not in resp.headers
        assert len(sim.state.accepted()) == 4
    assert statuses == [200, 200, 200]


@aiotest
async def test_transient_errors_vary_and_record_nothing() -> None:
    """error_rate 1: every create answers a known transient status, in JSON, HTML or empty bodies."""
    async with serving(SimConfig(error_rate=1.0, seed=7)) as (sim, session):
        seen: set[tuple[int, str]] = set()
        for i in range(40):
            async with session.post(CREATE, json=make_body(str(i)), headers=make_headers()) as resp:
                raw = await resp.read()
                kind = "empty" if not raw else resp.content_type
                seen.add((resp.status, kind))
                if resp.status == 503:
                    assert orjson.loads(raw)["errors"][0]["code"] == 4001
        assert sim.state.accepted() == []
    assert {status for status, _ in seen} <= {500, 502, 503, 504, 521, 461}
    assert {kind for _, kind in seen} == {"application/json", "text/html", "empty"}


@aiotest
async def test_seeded_faults_repeat() -> None:
    """Two simulators with the same seed inject the same faults in the same order."""
    runs = []
    for _ in range(2):
        async with serving(SimConfig(error_rate=0.5, seed=42)) as (_, session):
            runs.append([(await create(session, make_body(str(i))))[0] for i in range(20)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and set(runs[0]) != {200}


@aiotest
async def test_latency_delays_the_answer() -> None:
    """latency (low, high) delays each create by a time between the bounds."""
    async with serving(SimConfig(latency=(0.02, 0.03))) as (_, session):
        loop = asyncio.get_running_loop()
        started = loop.time()
        await create(session)
        assert loop.time() - started >= 0.02


# -- OAuth --------------------------------------------------------------------------------------------


@aiotest
async def test_oauth_token_works_then_expires() -> None:
    """A generated token is accepted as X-CAP-API-OAUTH-TOKEN until ttlSeconds pass on the clock."""
    clock = FakeClock()
    async with serving(SimConfig(oauth_ttl_seconds=60), clock=clock) as (sim, session):
        creds = {"key": SANDBOX_OAUTH_KEY, "secret": SANDBOX_OAUTH_SECRET}
        async with session.post(OAUTH, json=creds) as resp:
            assert resp.status == 200
            answer = await resp.json()
        token = answer["data"]["accessToken"]
        assert answer == {"data": {"accessToken": token, "ttlSeconds": 60}, "errors": None}
        oauth_headers = {"Authorization": "", "X-CAP-API-OAUTH-TOKEN": token}
        assert (await create(session, **oauth_headers))[0] == 200
        clock.now += 59.9
        assert (await create(session, make_body("2"), **oauth_headers))[0] == 200
        clock.now += 0.2
        status, expired = await create(session, make_body("3"), **oauth_headers)
        assert status == 401
        assert "expired" in expired["errors"][0]["message"]
        assert token not in orjson.dumps(expired).decode()
        assert sim.state.oauth_calls == 1


@pytest.mark.parametrize(
    ("creds", "status"),
    [({"key": SANDBOX_OAUTH_KEY, "secret": "nope"}, 401), ({"key": "other", "secret": "x"}, 401), ({}, 400)],
)
@aiotest
async def test_oauth_rejects_bad_credentials(creds: dict[str, str], status: int) -> None:
    """Bad key or secret answer 401 (a bad body 400) in the token endpoint's error shape."""
    async with serving() as (_, session), session.post(OAUTH, json=creds) as resp:
        answer = await resp.json()
        assert resp.status == status
    assert answer["data"] is None
    assert set(answer["errors"][0]) == {"code", "message"}


# -- get, list ----------------------------------------------------------------------------------------


@aiotest
async def test_get_one_request() -> None:
    """GET requests/{id} answers the same object as create; an unknown id answers 404."""
    async with serving() as (sim, session):
        _, created = await create(session)
        request_id = created["data"]["requestId"]
        url = f"{REQUESTS}/{request_id}"
        async with session.get(url, headers=make_headers(SANDBOX_CHECKER_TOKEN)) as resp:
            assert resp.status == 200
            assert await resp.json() == created
        async with session.get(f"{REQUESTS}/{uuid.uuid4()}", headers=make_headers()) as resp:
            assert resp.status == 404
            assert "errors" in await resp.json()
        async with session.get(url, headers=make_headers("bad")) as resp:
            assert resp.status == 401
        assert sim.state.get_calls == 3


@aiotest
async def test_list_pages_filters_and_sorts() -> None:
    """The list endpoint filters, sorts and pages (PageNo 0-based) with the documented pagination."""
    day = datetime(2024, 5, 1, 9, 0, 0)
    times = iter(day + timedelta(hours=6 * i) for i in range(100))
    config = SimConfig(maker_tokens={SANDBOX_MAKER_TOKEN: 1001, SANDBOX_CHECKER_TOKEN: 1002, "t3": 1003},
                       stamp_zone_minutes=0)  # days as UTC's, for the date filters below
    async with serving(config, now=lambda: next(times)) as (sim, session):
        ids = [(await create(session, make_body(str(i))))[1]["data"]["requestId"] for i in range(11)]
        third_user = (await create(session, make_body("u3"), token="t3"))[1]["data"]["requestId"]
        other_store = make_body("s")
        other_store["entityInfo"]["storeId"] = "999"
        store_id = (await create(session, other_store))[1]["data"]["requestId"]
        await decide(session, ids[0])
        await decide(session, ids[1], "rejected")

        async def listing(**params: str) -> dict[str, Any]:
            async with session.get(REQUESTS, params=params, headers=make_headers()) as resp:
                assert resp.status == 200, await resp.text()
                result: dict[str, Any] = await resp.json()
                return result

        first = await listing(requestType="CUSTOMER-STATUS-CHANGE", limit="5", PageNo="0")
        assert first["pagination"] == {
            "totalElements": 13,
            "totalPages": 3,
            "numberOfElements": 5,
            "number": 0,
        }
        assert first["data"][0]["requestId"] == store_id  # newest first by default
        last = await listing(limit="5", PageNo="2", sortOrder="asc")
        assert [r["requestId"] for r in last["data"]] == [ids[10], third_user, store_id]
        assert last["pagination"]["numberOfElements"] == 3
        assert (await listing(limit="5", PageNo="3"))["data"] == []
        assert len((await listing())["data"]) == 10  # default limit

        pending = await listing(states="AdminTask", limit="100")
        assert pending["pagination"]["totalElements"] == 11
        decided = await listing(states="approved,rejected", sortBy="endDate", sortOrder="asc")
        assert [(r["requestId"], r["state"]) for r in decided["data"]] == [
            (ids[0], "approved"),
            (ids[1], "rejected"),
        ]
        assert [r["requestId"] for r in (await listing(userId="1003"))["data"]] == [third_user]
        assert [r["requestId"] for r in (await listing(storeId="999"))["data"]] == [store_id]
        assert (await listing(tillId=SANDBOX_TILL_ID, limit="100"))["pagination"]["totalElements"] == 13
        # 6-hour steps from 2024-05-01 09:00: four requests a day, dates inclusive.
        on_day_two = await listing(startDate="2024-05-02", endDate="2024-05-02", sortOrder="asc")
        assert [r["requestId"] for r in on_day_two["data"]] == ids[3:7]
        assert (await listing(requestType="customer-status-change"))["pagination"]["totalElements"] == 13
        assert (await listing(requestType="GOODWILL-POINTS"))["pagination"]["totalElements"] == 0

        for bad in (
            {"limit": "501"},
            {"limit": "0"},
            {"PageNo": "-1"},
            {"sortBy": "x"},
            {"startDate": "1/5"},
        ):
            async with session.get(REQUESTS, params=bad, headers=make_headers()) as resp:
                assert resp.status == 400
                assert (await resp.json())["errors"][0]["message"]
        assert sim.state.list_calls >= 13


# -- approve / reject ---------------------------------------------------------------------------------


@aiotest
async def test_checker_approves_and_rejects() -> None:
    """A checker's decision moves AdminTask to approved/rejected with an endTime; a second one is refused."""
    async with serving() as (sim, session):
        first = (await create(session, make_body("1")))[1]["data"]["requestId"]
        second = (await create(session, make_body("2")))[1]["data"]["requestId"]
        status, approved = await decide(session, first)
        assert status == 200
        assert approved["data"]["state"] == "approved"
        assert TIME_RE.match(approved["data"]["endTime"])
        assert approved["data"]["userId"] == 1001  # still the maker
        status, rejected = await decide(session, second, "rejected")
        assert (status, rejected["data"]["state"]) == (200, "rejected")
        status, again = await decide(session, first, "rejected")
        assert status == 400
        assert "not awaiting a decision" in again["errors"][0]["message"]
        assert [r.state for r in sim.state.accepted()] == ["approved", "rejected"]
        assert sim.state.accepted()[0].checker_id == 1002
        status, _ = await decide(session, str(uuid.uuid4()))
        assert status == 404


@aiotest
async def test_user_without_can_check_request_is_refused() -> None:
    """The maker (no CanCheckRequest) gets 403 with error code 4000."""
    async with serving() as (sim, session):
        request_id = (await create(session))[1]["data"]["requestId"]
        status, answer = await decide(session, request_id, token=SANDBOX_MAKER_TOKEN)
        assert sim.state.accepted()[0].state == "AdminTask"
    assert status == 403
    assert answer["errors"][0]["code"] == 4000
    assert "CanCheckRequest" in answer["errors"][0]["message"]


@aiotest
async def test_maker_cannot_approve_own_request() -> None:
    """Even with CanCheckRequest, the maker of a request cannot decide it."""
    async with serving(SimConfig(checkers={1001, 1002})) as (sim, session):
        request_id = (await create(session))[1]["data"]["requestId"]
        status, answer = await decide(session, request_id, token=SANDBOX_MAKER_TOKEN)
        assert sim.state.accepted()[0].state == "AdminTask"
    assert status == 403
    assert "maker of a request cannot approve" in answer["errors"][0]["message"]


@aiotest
async def test_approval_can_fail() -> None:
    """fail_on_approve values, and a bad inner Authorization, end in state failed after approval."""
    async with serving(SimConfig(fail_on_approve={"fails"})) as (_, session):
        failing = (await create(session, make_body("fails")))[1]["data"]["requestId"]
        bad_inner = make_body("inner")
        bad_inner["payload"]["IntouchAPITask-Payload"]["headers"]["Authorization"] = BAD_BASIC
        inner = (await create(session, bad_inner))[1]["data"]["requestId"]
        assert (await decide(session, failing))[1]["data"]["state"] == "failed"
        assert (await decide(session, inner))[1]["data"]["state"] == "failed"


# -- controls, threads, serve_forever -----------------------------------------------------------------


@aiotest
async def test_sim_control_endpoints() -> None:
    """/__sim/ shows accepted requests and counters, and changes settings at runtime without secrets."""
    async with serving() as (sim, session):
        await create(session, make_body("1"))
        async with session.get("/__sim/accepted") as resp:
            [summary] = await resp.json()
        assert summary["identifierValue"] == "1"
        assert set(summary) == {
            "requestId",
            "identifierName",
            "identifierValue",
            "label",
            "reason",
            "state",
            "userId",
        }
        change = {"error_rate": 1.0, "latency": [0, 0], "not_found": ["9"], "maker_tokens": {"new": 7}}
        async with session.post("/__sim/config", json=change) as resp:
            assert resp.status == 200
            shown = await resp.text()
        assert SANDBOX_MAKER_TOKEN not in shown and SANDBOX_API_PASSWORD not in shown
        assert sim.config.maker_tokens == {"new": 7} and sim.config.not_found == {"9"}
        assert (await create(session, make_body("2"), token="new"))[0] >= 461
        async with session.post("/__sim/config", json={"error_rate": 2}) as resp:
            assert resp.status == 400
        async with session.post("/__sim/config", json={"nonsense": 1}) as resp:
            assert resp.status == 400
            assert "nonsense" in (await resp.json())["error"]
        async with session.get("/__sim/stats") as resp:
            stats = await resp.json()
        assert stats["create_calls"] == 2 and stats["accepted"] == 1
        assert stats["states"] == {"AdminTask": 1}


def test_simulator_thread_serves_and_can_be_changed_mid_run() -> None:
    """SimulatorThread serves from a daemon thread; tests read state and change config while it runs."""

    async def two_creates(url: str, sim: Simulator) -> list[int]:
        async with aiohttp.ClientSession(base_url=url) as session:
            first = (await create(session, make_body("1")))[0]
            sim.config.not_found = {"2"}
            return [first, (await create(session, make_body("2")))[0]]

    with SimulatorThread() as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert asyncio.run(two_creates(running.url, running.sim)) == [200, 400]
        assert [r.identifier_value for r in running.sim.state.accepted()] == ["1"]
        port = int(running.url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass


@aiotest
async def test_serve_forever_reports_url_and_stops_on_cancel() -> None:
    """serve_forever calls on_ready with the URL and closes the port when cancelled."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever(SimConfig(), "127.0.0.1", 0, ready.set_result))
    url = await asyncio.wait_for(ready, 5)
    async with aiohttp.ClientSession(base_url=url) as session:
        assert (await create(session))[0] == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass


@aiotest
async def test_concurrent_creates_are_all_recorded() -> None:
    """Hundreds of concurrent creates each get their own request, recorded once, in arrival order."""
    async with serving() as (sim, session):
        answers = await asyncio.gather(*(create(session, make_body(str(i))) for i in range(300)))
        assert {status for status, _ in answers} == {200}
        assert len({a["data"]["requestId"] for _, a in answers}) == 300
        assert sorted(r.identifier_value for r in sim.state.accepted()) == sorted(str(i) for i in range(300))
