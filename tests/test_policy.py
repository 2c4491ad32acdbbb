"""The verdict on every kind of answer, case by case: a pure function, so a table in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from bulkstatus.api.backoff import RetryPolicy
from bulkstatus.api.client import Answer, NoAnswer
from bulkstatus.api.policy import Kind, Verdict, judge

CREATED = {"data": {"requestId": "r-1", "state": "AdminTask", "userId": 7}}
V2_ERROR = {"errors": [{"status": False, "code": 8015, "message": "Customer not found for the given identifiers"}]}


def answer(status: int, data: Any = None, text: str = "", location: str = "") -> Answer:
    return Answer(status, data, text, None, location)


CASES: list[tuple[Kind, Answer | NoAnswer, Verdict]] = [
    # create: any 2xx with a requestId is a request that exists
    ("create", answer(200, CREATED), Verdict.DONE),
    ("create", answer(201, CREATED), Verdict.DONE),
    ("create", answer(202, CREATED), Verdict.DONE),
    ("create", answer(200, {"data": {"requestId": 12345}}), Verdict.DONE),
    # ... and a 2xx whose requestId cannot be read may exist too
    ("create", answer(200, {"data": {}}), Verdict.IN_DOUBT),
    ("create", answer(200, None, "OK"), Verdict.IN_DOUBT),
    ("create", answer(200, {"data": {"requestId": ""}}), Verdict.IN_DOUBT),
    ("create", answer(204), Verdict.IN_DOUBT),
    # gateways that timed out or failed after passing the request on
    ("create", answer(502, None, "Bad gateway"), Verdict.IN_DOUBT),
    ("create", answer(504), Verdict.IN_DOUBT),
    ("create", answer(521), Verdict.IN_DOUBT),
    ("create", answer(503, None, "<html>upstream connect error or disconnect/reset</html>"), Verdict.IN_DOUBT),
    ("create", answer(500), Verdict.IN_DOUBT),
    ("create", answer(524), Verdict.IN_DOUBT),
    # answered before anything was done
    ("create", answer(503, {"errors": [{"code": 4001, "message": "Authorization status unavailable"}]}),
     Verdict.RETRY),
    ("create", answer(461), Verdict.RETRY),
    ("create", answer(521, {"errors": [{"code": 521, "message": "Multiple actions"}]}), Verdict.RETRY),
    ("create", answer(400, {"errors": [{"code": 521, "message": "Multiple actions"}]}), Verdict.RETRY),
    ("create", answer(400, {"errors": [{"code": 461, "message": "Search engine busy"}]}), Verdict.RETRY),
    ("create", answer(408), Verdict.RETRY),
    ("create", answer(429), Verdict.THROTTLED),
    ("create", answer(401), Verdict.REFRESH),
    # the row's own answer
    ("create", answer(400, V2_ERROR), Verdict.FINAL),
    ("create", answer(409), Verdict.FINAL),
    ("create", answer(422), Verdict.FINAL),
    # nothing works until someone fixes something
    ("create", answer(403, {"errors": [{"code": 4000, "message": "not authorised"}]}), Verdict.ABORT),
    ("create", answer(404), Verdict.ABORT),
    ("create", answer(301, location="https://eu.example/api"), Verdict.ABORT),
    ("create", answer(407), Verdict.ABORT),
    ("create", answer(501), Verdict.ABORT),
    # no answer: was it sent?
    ("create", NoAnswer("connection closed with no answer", True), Verdict.IN_DOUBT),
    ("create", NoAnswer("timed out waiting for the answer", True, "timeout"), Verdict.IN_DOUBT),
    ("create", NoAnswer("cannot connect", False), Verdict.RETRY),
    ("create", NoAnswer("timed out connecting", False, "timeout"), Verdict.RETRY),
    ("create", NoAnswer("TLS certificate not trusted", False, "tls"), Verdict.ABORT),
    ("create", NoAnswer("cannot reach the proxy", False, "proxy"), Verdict.ABORT),
    ("create", NoAnswer("header", False, "config"), Verdict.ABORT),
    # a checker's decision: lost answers and gateway errors are looked up before a resend
    ("decide", answer(200, {"data": {"state": "approved"}}), Verdict.DONE),
    ("decide", answer(200, {"data": {}}), Verdict.IN_DOUBT),
    ("decide", answer(504), Verdict.IN_DOUBT),
    ("decide", NoAnswer("connection closed with no answer", True), Verdict.IN_DOUBT),
    ("decide", answer(403, {"errors": [{"code": 4000, "message": "maker cannot check"}]}), Verdict.FINAL),
    ("decide", answer(429), Verdict.THROTTLED),
    ("decide", answer(401), Verdict.REFRESH),
    # reading is harmless to repeat
    ("list", answer(200, {"data": [], "pagination": {}}), Verdict.DONE),
    ("list", answer(200, {"data": {}}), Verdict.ABORT),
    ("list", answer(502), Verdict.RETRY),
    ("list", answer(504), Verdict.RETRY),
    ("list", NoAnswer("connection closed with no answer", True), Verdict.RETRY),
    ("list", answer(429), Verdict.THROTTLED),
    ("list", answer(400, {"errors": [{"code": 400, "message": "limit too large"}]}), Verdict.ABORT),
    ("list", answer(403), Verdict.ABORT),
    ("list", answer(401), Verdict.REFRESH),
    ("get", answer(200, CREATED), Verdict.DONE),
    ("get", answer(404), Verdict.FINAL),
    ("get", answer(500), Verdict.RETRY),
    ("get", answer(503), Verdict.RETRY),
    ("decide", answer(503), Verdict.IN_DOUBT),
    ("get", answer(403), Verdict.ABORT),
    # the OAuth token
    ("oauth", answer(200, {"data": {"accessToken": "t", "ttlSeconds": 300}}), Verdict.DONE),
    ("oauth", answer(200, {"data": {}}), Verdict.ABORT),
    ("oauth", answer(400), Verdict.ABORT),
    ("oauth", answer(401), Verdict.REFRESH),
    ("oauth", answer(503), Verdict.RETRY),
    ("oauth", NoAnswer("connection closed with no answer", True), Verdict.RETRY),
]


@pytest.mark.parametrize(("kind", "outcome", "expected"), CASES,
                         ids=[f"{k}-{getattr(o, 'status', None) or o.args[0]}" for k, o, _ in CASES])
def test_verdict(kind: Kind, outcome: Answer | NoAnswer, expected: Verdict) -> None:
    """Each answer or missing answer gets the verdict the policy table gives."""
    assert judge(kind, outcome).verdict is expected


def test_every_abort_says_what_to_fix_in_one_line() -> None:
    """An ABORT carries one line, and it names something to change."""
    for kind, outcome, expected in CASES:
        if expected is Verdict.ABORT:
            why = judge(kind, outcome).why
            assert why and "\n" not in why, (kind, why)
            assert any(word in why for word in ("check", "set ", "put ", "lower ", "add ")), (kind, why)


def test_a_redirect_names_where_it_points() -> None:
    """A 301 from the create endpoint says where to, so the user can fix --base-url."""
    why = judge("create", answer(301, location="https://eu.example/api")).why
    assert "https://eu.example/api" in why and "--base-url" in why


def test_credentials_advice_is_not_the_pending_check_switch() -> None:
    """A 401 that persists is about credentials: the cause says so, and --no-pending-check is not advised."""
    from bulkstatus.api.policy import refused_credentials

    line = refused_credentials("list")
    assert "BULKSTATUS_UI_TOKEN" in line and "--no-pending-check" not in line


@pytest.mark.parametrize(("attempt", "retry_after", "low", "high"), [
    (1, None, 0.5, 1.0), (2, None, 1.0, 2.0), (3, None, 2.0, 4.0), (7, None, 30.0, 60.0), (20, None, 30.0, 60.0),
    (1, 5.0, 5.0, 5.0), (3, 0.0, 0.0, 0.0),
])
def test_backoff_formula(attempt: int, retry_after: float | None, low: float, high: float) -> None:
    """min(cap, base * 2^(attempt-1)) * uniform(0.5, 1); Retry-After wins."""
    policy = RetryPolicy(max_retries=5, base=1.0, cap=60.0)
    for _ in range(20):
        assert low <= policy.wait(attempt, retry_after) <= high


def test_zero_backoff_retries_at_once() -> None:
    """The tests' policy: base 0 waits nothing."""
    assert RetryPolicy(base=0).wait(5) == 0.0


@pytest.mark.parametrize(("header", "seconds"), [
    ("5", 5.0), ("0", 0.0), ("-3", 0.0), ("1.5", 1.5), ("10000", 600.0), ("inf", None), ("1e999", None),
    ("nan", None), ("soon", None), ("", None), (None, None),
    ("Wed, 02 Dec 2026 10:00:30 GMT", 30.0), ("Wed, 02 Dec 2026 09:59:00 GMT", 0.0),
    ("Thu, 03 Dec 2026 10:00:00 GMT", 600.0),
])
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    """Seconds or an HTTP date, clamped to 0..600 s (for a retry and a 429's pause alike); nonsense is None."""
    from datetime import UTC, datetime

    from bulkstatus.api.backoff import parse_retry_after

    assert parse_retry_after(header, now=datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)) == seconds
