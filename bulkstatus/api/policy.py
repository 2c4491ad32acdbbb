"""The verdict on one attempt of one call: a pure function of the call's kind and what came back.

Every call bulkstatus makes (create, decide, list, get, oauth) is judged here and nowhere else; the retry
loop in ``calls.py`` only acts on the verdict.

| verdict    | meaning                                                        | the loop                      |
|------------|----------------------------------------------------------------|-------------------------------|
| DONE       | the call did what it was for                                   | returns it                    |
| IN_DOUBT   | a create or decision may have taken effect: look it up first   | settles, then resends or not  |
| RETRY      | certainly had no effect (or is harmless to repeat)             | backs off, tries again        |
| THROTTLED  | 429: no effect; the server wants fewer calls                   | pauses the pacer, tries again |
| REFRESH    | 401: the credentials may have expired                          | reads them again, once        |
| FINAL      | the answer is this call's outcome (a business error, say)      | returns it                    |
| ABORT      | nothing will work until someone fixes something               | stops the run, saying what    |

Decided where the API leaves it open (README, "Never losing or doubling a row"): for a create or a
decision, 500, 502, 504, 521 and any other 5xx but 501/503/505 are *in doubt* (a gateway that timed out
may have passed the request on; 521 "multiple actions running for the same customer" may be our own
first attempt still running); 503 (4001 "authorization status unavailable"), 461 and 408 are answered
before anything is done, so they are retried. Any 2xx with a requestId is a created request, whatever
the exact status; a 2xx without a readable requestId is in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bulkstatus.api.client import Answer, NoAnswer

Kind = Literal["create", "decide", "list", "get", "oauth"]
CHANGES = frozenset({"create", "decide"})  # calls that change something, so a lost answer leaves a doubt


class Verdict(StrEnum):
    DONE = "done"
    IN_DOUBT = "in-doubt"
    RETRY = "retry"
    THROTTLED = "throttled"
    REFRESH = "refresh"
    FINAL = "final"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    why: str = ""  # for ABORT: one line saying what is wrong and what to fix
    cause: str = "endpoint"  # for ABORT: credentials, tls, proxy, config or endpoint (errors.RunAborted)


RETRY_STATUSES = frozenset({408, 461})
# Error codes (the v2 body's) that say nothing was done, whatever the status: 461 search engine busy,
# 521 multiple actions running for the customer, 4001 authorization status unavailable.
RETRY_CODES = frozenset({"461", "521", "4001"})
NOT_DOUBTFUL_5XX = frozenset({501, 505})
_WHAT = {"create": "creating requests", "decide": "deciding requests", "list": "listing requests",
         "get": "reading a request", "oauth": "generating an OAuth token"}
CREDENTIALS_FIX = ("check BULKSTATUS_UI_TOKEN (or the file --ui-token-file names) and the gateway credentials "
                   "(BULKSTATUS_API_USER/PASSWORD or BULKSTATUS_OAUTH_KEY/SECRET)")


def refused_credentials(kind: Kind) -> str:
    """What to say when a 401 persists after the credentials were read again."""
    if kind == "oauth":
        return "the OAuth token URL refused the key and secret: check BULKSTATUS_OAUTH_KEY and BULKSTATUS_OAUTH_SECRET"
    return f"the API refused the credentials {_WHAT[kind]} (HTTP 401) even after reading them again: {CREDENTIALS_FIX}"


def has_request_id(answer: Answer) -> bool:
    data = answer.payload
    return data is not None and isinstance(data.get("requestId"), str | int) and bool(str(data["requestId"]))


def _done(kind: Kind, answer: Answer) -> Judgement:
    """A 2xx: did it carry what the call needs?"""
    if kind == "create":
        return Judgement(Verdict.DONE if has_request_id(answer) else Verdict.IN_DOUBT)
    if kind == "decide":
        data = answer.payload
        return Judgement(Verdict.DONE if data is not None and data.get("state") else Verdict.IN_DOUBT)
    if kind == "list":
        items = answer.data.get("data") if isinstance(answer.data, dict) else None
        if isinstance(items, list):
            return Judgement(Verdict.DONE)
        return Judgement(Verdict.ABORT, f"the list endpoint answered HTTP {answer.status} without a list of "
                                        "requests: check --base-url")
    if kind == "oauth":
        data = answer.payload
        if data is not None and isinstance(data.get("accessToken"), str) and data["accessToken"]:
            return Judgement(Verdict.DONE)
        return Judgement(Verdict.ABORT, f"the OAuth token URL answered HTTP {answer.status} without an accessToken: "
                                        "check --oauth-url")
    return Judgement(Verdict.DONE if answer.payload is not None else Verdict.FINAL)


def _refusal(kind: Kind, answer: Answer) -> Judgement:
    """A 4xx other than 401, 408 and 429."""
    status = answer.status
    code, message = answer.error()
    said = f" ({code + ': ' if code else ''}{message})" if message and (code or not message.startswith("HTTP ")) else ""
    if status == 407:
        return Judgement(Verdict.ABORT, "the proxy asks for credentials (HTTP 407): put them in the proxy URL "
                                        "(http://user:password@host:port) or set NO_PROXY for the API's host", "proxy")
    if kind == "create" and status in (403, 404):
        what = "not authorised (403)" if status == 403 else "not found (404)"
        return Judgement(Verdict.ABORT, f"the create endpoint answered {what}{said}: check --base-url, --org-id "
                                        "and that the UI token's user has CanMakeRequest")
    if kind in ("create", "decide") or (kind == "get" and status == 404):
        return Judgement(Verdict.FINAL)  # this row's or this request's answer; the others go on
    if kind == "oauth":
        return Judgement(Verdict.ABORT, f"the OAuth token URL refused the key and secret (HTTP {status}){said}: "
                                        "check BULKSTATUS_OAUTH_KEY, BULKSTATUS_OAUTH_SECRET and --oauth-url",
                         "credentials")
    if status == 403:
        return Judgement(Verdict.ABORT, f"not authorised {_WHAT[kind]} (HTTP 403){said}: check that the UI token's "
                                        "user may read the request-workflow requests")
    if status == 404:
        return Judgement(Verdict.ABORT, f"the API answered 404 {_WHAT[kind]}{said}: check --base-url")
    fix = "; if it is about limit, lower --list-limit" if kind == "list" else ""
    return Judgement(Verdict.ABORT, f"the API refused the query {_WHAT[kind]} (HTTP {status}){said}{fix}")


def judge(kind: Kind, outcome: Answer | NoAnswer) -> Judgement:
    """The verdict on one attempt: an answer, or the exception that says there was none."""
    if isinstance(outcome, NoAnswer):
        if outcome.cause == "tls":
            return Judgement(Verdict.ABORT, f"{outcome.kind}: if the API uses a private certificate authority, "
                                            "set SSL_CERT_FILE to its certificate (PEM)", "tls")
        if outcome.cause == "proxy":
            return Judgement(Verdict.ABORT, f"{outcome.kind}: check HTTPS_PROXY / HTTP_PROXY, or add the API's "
                                            "host to NO_PROXY", "proxy")
        if outcome.cause == "config":
            return Judgement(Verdict.ABORT, f"{outcome.kind}: check the UI token, the org id and the gateway "
                                            "credentials for line breaks or other characters HTTP does not allow",
                             "config")
        if outcome.sent and kind in CHANGES:
            return Judgement(Verdict.IN_DOUBT)
        return Judgement(Verdict.RETRY)
    status = outcome.status
    if 200 <= status < 300:
        return _done(kind, outcome)
    if 300 <= status < 400:
        where = f" to {outcome.location}" if outcome.location else ""
        return Judgement(Verdict.ABORT, f"the API answered a redirect (HTTP {status}){where} {_WHAT[kind]}: "
                                        "check --base-url (https://, the host, no trailing path)")
    if status == 401:
        return Judgement(Verdict.REFRESH)
    if status == 429:
        return Judgement(Verdict.THROTTLED)
    if status in RETRY_STATUSES:
        return Judgement(Verdict.RETRY)
    if status >= 400 and outcome.error()[0] in RETRY_CODES:
        return Judgement(Verdict.RETRY)  # the API's own word that it did nothing
    if status >= 500:
        # A 503 without the API's 4001 may come from a gateway that had passed the request on (an
        # upstream reset): a change is looked up first; a read is simply retried.
        if kind in CHANGES and status not in NOT_DOUBTFUL_5XX:
            return Judgement(Verdict.IN_DOUBT)
        if status in (501, 505):
            return Judgement(Verdict.ABORT, f"the API answered HTTP {status} {_WHAT[kind]}: check --base-url")
        return Judgement(Verdict.RETRY)
    if 400 <= status < 500:
        return _refusal(kind, outcome)
    return Judgement(Verdict.RETRY)  # 1xx or nonsense: nothing was done with it
