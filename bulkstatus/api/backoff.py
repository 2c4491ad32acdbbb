"""How long to wait before another try.

Which answers are worth one is ``api/policy.py``'s to say. Backoff is capped exponential with "full
jitter" on the upper half: ``wait = min(cap, base * 2 ** (attempt - 1)) * uniform(0.5, 1.0)``; a
Retry-After header overrides it. ``RetryPolicy(base=0)`` retries at once, which is what the tests use
instead of sleeping.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# The longest Retry-After honoured (for a retry and for a 429's pause alike); a larger one counts as this.
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
            return retry_after
        if self.base <= 0:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds, 0 to ``MAX_RETRY_AFTER``: a number of seconds or an HTTP date; None when
    it is neither (or not a finite number)."""
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
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
