"""The values that travel through a run: an input row and its result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    SUBMITTED = "submitted"
    FAILED = "failed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    UNPROCESSED = "unprocessed"
    DRY_RUN = "dry-run"
    PENDING_EXISTS = "pending-exists"


# The eight identifier names the API documents, keyed by their lower-case form so that any letter
# case in the file is accepted and the documented spelling is sent.
IDENTIFIER_NAMES: dict[str, str] = {
    name.lower(): name
    for name in (
        "mobile",
        "email",
        "externalId",
        "cardnumber",
        "cardExternalId",
        "wechat",
        "fbid",
        "martjackId",
    )
}


def canonical_name(name: str) -> str:
    """The documented spelling of an identifier name written in any letter case (the one place that
    says so); a name that is not documented comes back as written, without surrounding spaces."""
    name = name.strip()
    return IDENTIFIER_NAMES.get(name.lower(), name)


@dataclass(slots=True)
class Row:
    """One data row of the input file, every value as the text written in the file."""

    number: int  # 1-based data row number
    identifier_name: str
    identifier_value: str
    label: str
    reason: str
    # The row's number in the file it first came from, when its own file says so (a sourceRow column, as in
    # retry.csv and fix.csv); 0 when this file is that file.
    origin: int = 0

    @property
    def source_row(self) -> int:
        """The row number of the original file, carried through every re-run of retry.csv or fix.csv."""
        return self.origin or self.number

    @property
    def key(self) -> tuple[str, str]:
        """What makes two rows the same customer: documented identifier name and exact value."""
        return (canonical_name(self.identifier_name), self.identifier_value)


@dataclass(slots=True)
class Result:
    """What became of one row; one line of results.csv."""

    row: Row
    outcome: Outcome
    request_id: str = ""
    state: str = ""
    http_status: int | None = None
    error_code: str = ""
    error: str = ""
    attempts: int = 0
    finished_at: str = ""
    # A failure that is only retries running out (5xx, 429s, no answer): the API never gave this row a
    # final answer, so it is worth sending again as it is (retry.csv), unlike a refusal (fix.csv).
    transient: bool = False
