"""Which answers are worth another try, and how long to wait before it.

Backoff is capped exponential with "full jitter" on the upper half:
``wait = min(cap, base * 2 ** (attempt - 1)) * uniform(0.5, 1.0)``; a Retry-After header overrides it.
``RetryPolicy(base=0)`` retries at once, which is what the tests use instead of sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# The statuses the API documents as passing: 429 throttled, 461 search engine busy, 503 (4001)
# authorization status unavailable, 521 multiple actions running for the customer, and gateway errors.
RETRYABLE_STATUSES = frozenset({429, 461, 500, 502, 503, 504, 521})
# The longest Retry-After honoured; a larger value is treated as this (and said in the log).
MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return float(min(retry_after, MAX_RETRY_AFTER))
        if self.base <= 0:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)
