"""The list endpoint's query: parse, filter, sort, page.

Choices the docs leave open: `PageNo` is 0-based; `limit` defaults to 10 and must be 1..500 (a larger one
is refused with 400, not silently cut); the default order is startDate descending (newest first); requests
without an endTime come last when sorting by endDate; date filters are inclusive and apply to startTime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bulkstatus.sim.config import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from bulkstatus.sim.state import StoredRequest

_ENTITY_FILTERS = ("conceptId", "zoneId", "storeId", "tillId")


@dataclass(frozen=True, slots=True)
class ListQuery:
    request_type: str | None = None  # lower-case
    states: frozenset[str] | None = None  # lower-case
    start_date: date | None = None
    end_date: date | None = None
    entity: tuple[tuple[str, str], ...] = ()
    user_id: int | None = None
    sort_by: str = "startDate"
    descending: bool = True
    limit: int = DEFAULT_LIST_LIMIT
    page: int = 0


def _date(params: Mapping[str, str], key: str) -> date | None:
    text = params.get(key)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{key} must be a date as YYYY-MM-DD") from None


def _int(params: Mapping[str, str], key: str, default: int | None, low: int, high: int | None) -> int | None:
    text = params.get(key)
    if text is None or text == "":
        return default
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{key} must be an integer") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{key} must be {bound}")
    return number


def parse_query(params: Mapping[str, str]) -> ListQuery:
    """The list query from URL parameters; raises ValueError with a message naming the bad parameter."""
    states_text = params.get("states")
    states = None
    if states_text:
        states = frozenset(s.strip().lower() for s in states_text.split(",") if s.strip())
    sort_by = params.get("sortBy") or "startDate"
    if sort_by not in ("startDate", "endDate"):
        raise ValueError("sortBy must be startDate or endDate")
    sort_order = (params.get("sortOrder") or "desc").lower()
    if sort_order not in ("asc", "desc"):
        raise ValueError("sortOrder must be asc or desc")
    limit = _int(params, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT)
    page = _int(params, "PageNo", 0, 0, None)
    assert limit is not None and page is not None
    request_type = params.get("requestType")
    return ListQuery(
        request_type=request_type.lower() if request_type else None,
        states=states,
        start_date=_date(params, "startDate"),
        end_date=_date(params, "endDate"),
        entity=tuple((key, params[key]) for key in _ENTITY_FILTERS if params.get(key)),
        user_id=_int(params, "userId", None, 0, None),
        sort_by=sort_by,
        descending=sort_order == "desc",
        limit=limit,
        page=page,
    )


def _matches(request: StoredRequest, query: ListQuery) -> bool:
    if query.request_type is not None and request.request_type.lower() != query.request_type:
        return False
    if query.states is not None and request.state.lower() not in query.states:
        return False
    day = request.local(request.start_time).date()  # the server's own day
    if query.start_date is not None and day < query.start_date:
        return False
    if query.end_date is not None and day > query.end_date:
        return False
    if query.user_id is not None and request.user_id != query.user_id:
        return False
    return all(request.entity_info.get(key) == value for key, value in query.entity)


def select(requests: Iterable[StoredRequest], query: ListQuery) -> dict[str, Any]:
    """The documented answer: `{"data": [...], "pagination": {...}}`."""
    found = [r for r in requests if _matches(r, query)]
    if query.sort_by == "endDate":
        ended = [r for r in found if r.end_time is not None]
        ended.sort(key=lambda r: (r.end_time or datetime.min, r.sequence), reverse=query.descending)
        found = ended + [r for r in found if r.end_time is None]
    else:
        found.sort(key=lambda r: (r.start_time, r.sequence), reverse=query.descending)
    total = len(found)
    first = query.page * query.limit
    page = found[first : first + query.limit]
    return {
        "data": [r.to_api() for r in page],
        "pagination": {
            "totalElements": total,
            "totalPages": -(-total // query.limit),
            "numberOfElements": len(page),
            "number": query.page,
        },
    }
