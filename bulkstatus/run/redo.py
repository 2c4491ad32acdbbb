"""Where a row that did not go through is offered again: retry.csv (run it as it is) or fix.csv (change it first).

Pure functions of a row's outcome; the Recorder (``journal.py``) writes the files.

| outcome                                       | file      | why                                              |
|-----------------------------------------------|-----------|--------------------------------------------------|
| ``unprocessed``, not sent                     | retry.csv | the run stopped before it                        |
| ``unprocessed``, sent, its answer lost        | neither   | in doubt: only ``resume`` looks it up first      |
| ``failed``, retries ran out (``transient``)   | retry.csv | the API never answered it finally (5xx, 429...)  |
| ``failed``, a final answer (8015, 400...)     | fix.csv   | sent again as it is, it fails again              |
| ``invalid``                                   | fix.csv   | never sent: the checks say what to change        |
| ``submitted``, ``duplicate``, ``pending-exists``, ``dry-run`` | neither | nothing to do again      |
"""

from __future__ import annotations

from enum import StrEnum

from bulkstatus.model import Outcome, Result, canonical_name

__all__ = ["Redo", "fix_for", "redo"]


class Redo(StrEnum):
    RETRY = "retry"
    FIX = "fix"


def redo(outcome: Outcome, transient: bool, in_doubt: bool) -> Redo | None:
    """Which file a row with this outcome goes to, if any (the table above)."""
    if outcome is Outcome.UNPROCESSED:
        return None if in_doubt else Redo.RETRY
    if outcome is Outcome.FAILED:
        return Redo.RETRY if transient else Redo.FIX
    if outcome is Outcome.INVALID:
        return Redo.FIX
    return None


# What the API's refusal codes that name a cause (capillary-api.md, "Errors") ask the person to change.
_CODE_FIXES = {
    "8015": "no customer has this {name}; correct identifierValue (or identifierName), or remove the row",
    "8013": "the API does not take this identifier; correct identifierName or identifierValue",
    "8003": "the source is a setting of the run, not of the row; run the file with the right --source",
    "1064": "the org is a setting of the run, not of the row; check --org-id",
}
_GENERIC = "correct the row as the API's message says, or remove it"


def fix_for(result: Result) -> str:
    """What to change before a fix.csv row is run again: for an invalid row the checks' own messages (each
    names the field and the fix), for a refused one what the API said and what that asks for."""
    if result.outcome is Outcome.INVALID:
        return result.error
    status, code, message = result.http_status, result.error_code, result.error
    said = ", ".join(part for part in (f"HTTP {status}" if status is not None else "",
                                        f"code {code}" if code else "") if part)
    if message and message != f"HTTP {status}":
        said = f"{said} ({message})" if said else message
    advice = _CODE_FIXES.get(code, _GENERIC).format(name=canonical_name(result.row.identifier_name) or "identifier")
    return f"the API answered {said}: {advice}" if said else f"the API refused the row: {advice}"
