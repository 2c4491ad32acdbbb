"""What the simulator remembers: the requests it created, every create call it received, and counters.

Handlers run on the simulator's event loop while tests read from their own thread, so every read and
mutation holds one lock. Readers get copies (lists, dicts) and never the live containers.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Request states as the API spells them.
PENDING = "AdminTask"
APPROVED = "approved"
REJECTED = "rejected"
FAILED = "failed"

REQUEST_TYPE_VALUE = "customer-status-change"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(slots=True)
class StoredRequest:
    """One maker request the simulator created."""

    request_id: str
    user_id: int
    user_name: str
    request_type: str
    state: str
    start_time: datetime
    end_time: datetime | None
    entity_info: dict[str, Any]
    payload: dict[str, Any]  # the IntouchAPITask-Payload object as sent
    identifier_name: str
    identifier_value: str
    label: str
    reason: str
    sequence: int = 0  # creation order (set by SimState.add), breaks ties between equal start times
    decision_message: str | None = None
    checker_id: int | None = None
    decision_payload: dict[str, Any] | None = None  # the AdminTask-Payload of the decision
    stamp_zone_minutes: int = 0  # the server clock's zone: times are written in it, with no zone named
    inner_output: dict[str, Any] | None = None  # a failed request's IntouchAPITask_Output: the inner error

    def local(self, when: datetime) -> datetime:
        """A stored time (naive UTC) as the server writes it."""
        return when + timedelta(minutes=self.stamp_zone_minutes)

    def to_api(self) -> dict[str, Any]:
        """The documented request object (the `data` of create, get and approve answers)."""
        details: dict[str, Any] = {
            "IntouchAPITask-Payload": self.payload,
            "ValidateMakerAccess_Output": True,
            "ValidatePayload_Output": True,
        }
        if self.decision_payload is not None:
            details["AdminTask-Payload"] = self.decision_payload
        if self.inner_output is not None:
            details["IntouchAPITask_Output"] = self.inner_output
        return {
            "requestId": self.request_id,
            "userId": self.user_id,
            "userName": self.user_name,
            "requestType": self.request_type,
            "state": self.state,
            "startTime": self.local(self.start_time).strftime(TIME_FORMAT),
            "endTime": None if self.end_time is None else self.local(self.end_time).strftime(TIME_FORMAT),
            "details": details,
        }

    def summary(self) -> dict[str, Any]:
        """The short form served by `/__sim/accepted`."""
        return {
            "requestId": self.request_id,
            "identifierName": self.identifier_name,
            "identifierValue": self.identifier_value,
            "label": self.label,
            "reason": self.reason,
            "state": self.state,
            "userId": self.user_id,
        }


def _member(value: Any, key: str) -> dict[str, Any]:
    """value[key] when both are JSON objects, else {}: a refused body can have any shape."""
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


@dataclass(slots=True)
class ReceivedCall:
    """One create call as it arrived, and what the simulator did with it.

    `outcome` is one of: accepted, dropped-after (recorded, then no answer), dropped-before, rate-limited,
    transient-error, rejected, not-found (a 404 for the path).
    """

    headers: Mapping[str, str]  # case-insensitive copy of the request headers
    body: Any  # the parsed JSON body, None when it was not JSON
    request_type: str
    status: int | None = None  # None when the connection was closed without an answer
    outcome: str = ""
    request_id: str | None = None
    number: int = 0  # arrival order, from 1 (set by SimState.record_call)
    received_at: datetime | None = None  # naive UTC, from the wall clock (not Simulator.now, which tests step)
    error_code: int | None = None  # the answer's v2 error code and message, when it was one
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The short form served by `/__sim/received`: what arrived and what was answered, no headers."""
        task = _member(_member(self.body, "payload"), "IntouchAPITask-Payload")
        query, inner = _member(task, "queryParams"), _member(task, "body")
        return {
            "number": self.number,
            "receivedAt": None if self.received_at is None else self.received_at.strftime(TIME_FORMAT) + "Z",
            "requestType": self.request_type,
            "identifierName": query.get("identifierName"),
            "identifierValue": query.get("identifierValue"),
            "label": inner.get("label"),
            "outcome": self.outcome,
            "status": self.status,
            "errorCode": self.error_code,
            "error": self.error,
            "requestId": self.request_id,
        }


@dataclass
class SimState:
    """Everything the simulator recorded; safe to read from another thread."""

    received_max: int = 100_000
    create_calls: int = 0
    list_calls: int = 0
    get_calls: int = 0
    approve_calls: int = 0
    oauth_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _requests: dict[str, StoredRequest] = field(default_factory=dict, repr=False)
    _received: deque[ReceivedCall] = field(init=False, repr=False)
    _sequence: int = 0

    def __post_init__(self) -> None:
        self._received = deque(maxlen=self.received_max)

    # -- writes (the simulator's loop) -------------------------------------------------------------------

    def record_call(
        self, headers: Mapping[str, str], body: Any, request_type: str, at: datetime | None = None
    ) -> ReceivedCall:
        call = ReceivedCall(headers=headers, body=body, request_type=request_type, received_at=at)
        with self._lock:
            self.create_calls += 1
            call.number = self.create_calls
            self._received.append(call)
        return call

    def add(self, request: StoredRequest) -> None:
        with self._lock:
            self._sequence += 1
            request.sequence = self._sequence
            self._requests[request.request_id] = request

    def count(self, counter: str) -> None:
        """Add one to `list_calls`, `get_calls`, `approve_calls` or `oauth_calls`."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def resize_received(self, maxlen: int) -> None:
        with self._lock:
            self.received_max = maxlen
            self._received = deque(self._received, maxlen=maxlen)

    def decide(
        self,
        request_id: str,
        state: str,
        end_time: datetime,
        checker_id: int,
        message: str,
        decision_payload: dict[str, Any],
        inner_output: dict[str, Any] | None = None,
    ) -> StoredRequest:
        """Move a pending request to its final state (the caller checked that it is pending)."""
        with self._lock:
            request = self._requests[request_id]
            request.state = state
            request.inner_output = inner_output
            request.end_time = end_time
            request.checker_id = checker_id
            request.decision_message = message
            request.decision_payload = decision_payload
            return request

    # -- reads (any thread) ------------------------------------------------------------------------------

    def get(self, request_id: str) -> StoredRequest | None:
        with self._lock:
            return self._requests.get(request_id)

    def accepted(self) -> list[StoredRequest]:
        """Every request the simulator created, in creation order."""
        with self._lock:
            return list(self._requests.values())

    def received(self) -> list[ReceivedCall]:
        """The create calls received (the last `received_max`), in arrival order, rejected ones included."""
        with self._lock:
            return list(self._received)

    def received_page(self, page: int, limit: int, newest_first: bool) -> tuple[list[ReceivedCall], int]:
        """One page of the create calls kept (arrival order, or newest first), and how many are kept."""
        with self._lock:
            total = len(self._received)
            first = page * limit
            if newest_first:
                indexes = range(total - 1 - first, max(total - 1 - first - limit, -1), -1)
            else:
                indexes = range(first, min(first + limit, total))
            return [self._received[i] for i in indexes], total

    def received_bodies(self) -> list[Any]:
        return [call.body for call in self.received()]

    def received_headers(self) -> list[Mapping[str, str]]:
        return [call.headers for call in self.received()]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            states: dict[str, int] = {}
            for request in self._requests.values():
                states[request.state] = states.get(request.state, 0) + 1
            return {
                "create_calls": self.create_calls,
                "list_calls": self.list_calls,
                "get_calls": self.get_calls,
                "approve_calls": self.approve_calls,
                "oauth_calls": self.oauth_calls,
                "accepted": len(self._requests),
                "states": states,
            }



def utc_now() -> datetime:
    """Now, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


_UUID_EPOCH = 0x01B21DD213814000  # 1582-10-15 in 100 ns steps before 1970-01-01


def uuid1_at(when: datetime) -> str:
    """A version-1 UUID made at ``when`` (naive UTC), as the real server's requestIds are; the clock
    sequence and the node are random (62 bits), so two made in the same tick still differ."""
    ticks = round(when.replace(tzinfo=UTC).timestamp() * 1e7) + _UUID_EPOCH
    sequence, node = random.getrandbits(14), random.getrandbits(48) | 1 << 40  # the multicast bit: not a MAC
    return str(uuid.UUID(fields=(ticks & 0xFFFFFFFF, (ticks >> 32) & 0xFFFF, (ticks >> 48) & 0x0FFF | 0x1000,
                                 0x80 | sequence >> 8, sequence & 0xFF, node)))
