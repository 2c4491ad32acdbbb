"""Brakes on a run: ``--limit`` (send at most N rows) and ``--max-failures`` (stop when too many rows are
refused for reasons a retry will not fix).

A *refused* row is one the API answered with a final error (the policy's FINAL verdict: a 4xx business
error such as 8015 customer not found, 8013 invalid identifier, a label the org does not know). Rows whose
retries ran out are not refused (the API never judged them; the health watch, ``--abort-after``, is what
stops a run whose API is down), and neither are rows found invalid before sending (never sent; ``--strict``
is their brake). Both brakes count what this session sends: a resume starts from zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bulkstatus.errors import ConfigError
from bulkstatus.model import Outcome, Result

MIN_DECIDED = 20  # a percentage is judged only once this many rows have an answer


@dataclass(frozen=True, slots=True)
class FailureLimit:
    """More than ``count`` refused rows, or more than ``percent`` % of the rows with an answer."""

    count: int | None
    percent: float | None
    text: str

    def exceeded(self, refused: int, decided: int) -> bool:
        if self.count is not None:
            return refused > self.count
        assert self.percent is not None
        return decided >= MIN_DECIDED and refused * 100 > self.percent * decided


def parse_failure_limit(text: str, where: str = "--max-failures") -> FailureLimit:
    """``5`` (more than 5 refused rows) or ``2.5%`` (more than 2.5% of the rows answered, once 20 are)."""
    raw = str(text).strip()
    fix = f"{where} {text!r} is not a limit: use a number of rows (e.g. 5) or a percentage (e.g. 10%)"
    if raw.endswith("%"):
        try:
            percent = float(raw[:-1])
        except ValueError:
            raise ConfigError(fix) from None
        if not 0 <= percent < 100:
            raise ConfigError(f"{where} {text!r}: a percentage must be at least 0% and below 100%")
        return FailureLimit(None, percent, f"{percent:g}%")
    try:
        count = int(raw)
    except ValueError:
        raise ConfigError(fix) from None
    if count < 0:
        raise ConfigError(fix)
    return FailureLimit(count, None, str(count))


def refused(result: Result) -> bool:
    """Whether the API gave this row a final refusal (see the module's docstring)."""
    return result.outcome is Outcome.FAILED and not result.transient


class FailureBrake:
    """Counts this session's answered rows and refusals by (code, message); says when to stop."""

    def __init__(self, limit: FailureLimit) -> None:
        self.limit = limit
        self.decided = 0  # rows sent by this session with an outcome: submitted or failed
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.tripped = False

    def observe(self, result: Result) -> str | None:
        """The reason to stop the run, the first time the limit is passed; None otherwise."""
        if result.outcome not in (Outcome.SUBMITTED, Outcome.FAILED):
            return None  # unprocessed (stopped, in doubt): no answer yet
        self.decided += 1
        if refused(result):
            self.refusals[(result.error_code, result.error)] += 1
        count = sum(self.refusals.values())
        if self.tripped or not self.limit.exceeded(count, self.decided):
            return None
        self.tripped = True
        return self.reason()

    def reason(self) -> str:
        count = sum(self.refusals.values())
        (code, message), most = self.refusals.most_common(1)[0]
        error = f"{code} {message}" if code else message
        return (f"--max-failures {self.limit.text}: {count} of {self.decided} rows answered were refused by the "
                f"API; most common: {error} ({most} rows); fix the cause, then resume the run")
