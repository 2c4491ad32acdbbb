"""Per-row validation: pure functions from the cells of one row to a CheckedRow. No I/O.

Every problem message names the field, says why it is wrong and how to fix it, because it is what
the user reads in results.csv, fix.csv and the `validate` report.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass, field

from bulkstatus.model import IDENTIFIER_NAMES, Row

# Longest value accepted per column: far above any real identifier, label or reason, low enough that a
# runaway cell (a missing quote that swallowed lines) is caught instead of sent.
MAX_LENGTH = {"identifierName": 256, "identifierValue": 256, "label": 256, "reason": 1000}
_MAX_VALUE, _MAX_LABEL, _MAX_REASON = MAX_LENGTH["identifierValue"], MAX_LENGTH["label"], MAX_LENGTH["reason"]

# E.164 numbers have at most 15 digits; nothing shorter than 6 digits is a reachable mobile.
MOBILE_DIGITS = (6, 15)
_MOBILE = re.compile(rf"\+?[0-9]{{{MOBILE_DIGITS[0]},{MOBILE_DIGITS[1]}}}")
_MOBILE_PUNCTUATION = re.compile(r"[\s\-.()/]")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# Trimmed around every value: tab and Unicode space separators (Zs: space, no-break space from
# spreadsheets, ...). Line breaks are not trimmed: inside a quoted value they are content and are checked.
# Spelled out rather than computed: scanning all 1.1 million code points for category Zs took 0.15 s of
# every start. The set has been the same since Unicode 6.3 (tests/test_checks_constants.py compares).
TRIM_CHARS = "\t \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"

# Control characters (Cc) are refused in every field; reason may hold line breaks and tabs (a note
# typed in a spreadsheet cell with Alt+Enter). Identifiers also refuse the invisible format characters
# that copy-paste brings along (soft hyphen, zero-width space, direction marks, BOM): they would make the
# API look up a customer that does not exist.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_REASON = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INVISIBLE = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_CONTROL_IN_IDENTIFIER = re.compile(f"[{_INVISIBLE}]")
EDGE_CHARS = _EDGE = TRIM_CHARS + "="  # a value starting with one of these may need normalise()
_CONTROL_NAMES = {"\t": "tab", "\n": "line break", "\r": "carriage return", "\x00": "NUL"}

# Names people write for the documented identifiers, for the did-you-mean only (never accepted).
_NAME_SYNONYMS = {
    "phone": "mobile", "mobileno": "mobile", "mobilenumber": "mobile", "msisdn": "mobile",
    "phonenumber": "mobile", "mail": "email", "emailid": "email", "emailaddress": "email",
    "card": "cardnumber", "cardno": "cardnumber", "externalid": "externalId", "phoneno": "mobile",
    "mobilenum": "mobile", "cellphone": "mobile", "contactnumber": "mobile", "emails": "email",
}
_DOCUMENTED = ", ".join(IDENTIFIER_NAMES.values())

# Every kind of row problem, with the heading the validate report counts it under.
PROBLEM_KINDS = {
    "too-few-cells": "row has fewer cells than the header",
    "too-many-cells": "row has more cells than the header",
    "unknown-identifier-name": "identifierName is not one of the documented names",
    "empty-value": "identifierValue is empty",
    "bad-email": "identifierValue cannot be an email address",
    "bad-mobile": "identifierValue cannot be a mobile number",
    "empty-label": "label is empty and no default label is set",
    "label-not-allowed": "label is not one of the allowed labels",
    "empty-reason": "reason is empty and no default reason is set",
    "too-long": "value is longer than allowed",
    "control-character": "value contains a control or invisible character",
    "duplicate": "same customer as an earlier row (not sent)",
    "label-conflict": "the file gives this customer different labels",
    "missing-value": "identifierValue is an export's missing value (\\N, NULL, nan)",
    "spreadsheet-error": "identifierValue is a spreadsheet error value (#N/A, #REF!)",
    "column-too-narrow": "identifierValue is ##### (a spreadsheet column too narrow)",
    "scientific-notation": "identifierValue is a number in scientific notation (digits lost)",
    "lost-characters": "identifierValue has ? or U+FFFD for lost characters",
}
Found = tuple[str, str, str]  # (column, kind, message)


@dataclass(frozen=True, slots=True)
class BrokenId:
    """An identifierValue that a spreadsheet or an export almost certainly broke: what it looks like, for
    which kinds of identifier, why it is broken and what to do."""

    kind: str  # its heading in PROBLEM_KINDS
    pattern: re.Pattern[str]  # searched for in the value (each pattern anchors itself where it must)
    names: frozenset[str] | None  # the identifier names it applies to; None: every one, undocumented too
    cause: str
    fix: str


_KINDS_OF_ID = frozenset(IDENTIFIER_NAMES.values())
_LOST = ("stands where a character was lost when the file was converted from one encoding to another",
         "take the value from the original file or system again (and save the file as CSV UTF-8)")
# First match wins. Decided per kind: an email may hold ? and # (both legal before the @) and is never
# numeric; mobile numbers and card numbers are digits, so a single ? is a lost digit; other ids
# (externalId, wechat...) are free text where "A#1" or "what?" may be real, so only a run of ?, a value
# made of # alone, or a number in exponent form is taken for broken.
BROKEN_IDS: tuple[BrokenId, ...] = (
    BrokenId("missing-value", re.compile(r"\A(?:\\N|(?i:null|nan)|None|<NA>)\Z"), None,
             "is how an export writes a missing value (a database's NULL, pandas' nan), not an identifier",
             "fill in the customer's identifier, or remove the row"),
    BrokenId("spreadsheet-error", re.compile(r"\A#(?:N/A|VALUE!|REF!|NAME\?|DIV/0!|NUM!|NULL!)\Z"), None,
             "is a spreadsheet's error value (a formula that failed), not an identifier",
             "fix the formula or type the value in, then save the file again"),
    BrokenId("column-too-narrow", re.compile(r"\A#+\Z"), None,
             "is only # signs, which a spreadsheet shows for a number too wide for its column",
             "widen the column (or format it as Text) and save the file again"),
    BrokenId("scientific-notation", re.compile(r"\A[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-][0-9]{1,3}\Z"),
             _KINDS_OF_ID - {"email"},
             "is a number in scientific notation, as a spreadsheet shows a long number: its last digits are lost",
             "format the column as Text in the sheet and type the full number again (or export it again)"),
    BrokenId("lost-characters", re.compile("\ufffd"), None,
             "holds U+FFFD (the replacement character), which " + _LOST[0], _LOST[1]),
    BrokenId("lost-characters", re.compile(r"\?"), frozenset({"mobile", "cardnumber"}),
             "holds ?, which in a number " + _LOST[0], _LOST[1]),
    BrokenId("lost-characters", re.compile(r"\?\?"), _KINDS_OF_ID - {"email", "mobile", "cardnumber"},
             "holds ?? (a run of ?), which " + _LOST[0], _LOST[1]),
)
# Nothing in BROKEN_IDS can match a value without one of these: the fast path's test.
_SUSPECT = re.compile(r"[#?\ufffd\\<]|[eE][+-]|\A(?i:null|nan|none)\Z")


def broken_id(name: str | None, value: str) -> tuple[str, str] | None:
    """(kind, message) when ``value``, an identifier of kind ``name``, is almost certainly broken."""
    for broken in BROKEN_IDS:
        if (broken.names is None or name in broken.names) and broken.pattern.search(value):
            return broken.kind, f'identifierValue "{show(value)}" {broken.cause}; {broken.fix}'
    return None


@dataclass(frozen=True, slots=True)
class RowRules:
    """What a row is checked against: defaults and the allowed labels (from ReadOptions)."""

    default_label: str | None = None
    default_reason: str | None = None
    allowed_labels: frozenset[str] | None = None
    default_name: str | None = None  # --identifier-name, for an empty identifierName cell or no such column


@dataclass(slots=True)
class CheckedRow:
    """A row as read, with what is wrong with it (problems) and what was adjusted (notes)."""

    row: Row
    problems: list[str]
    notes: list[str]
    canonical_name: str
    # (column, kind) of each entry of `problems`, in the same order, for the validate report's counts.
    kinds: list[tuple[str, str]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def normalise(value: str) -> str:
    """Trim spaces around a value and unwrap Excel's ="..." text guard, until neither applies.

    Repeating until stable makes reading idempotent: what we write back is read back the same.
    """
    while value and (value[0] in TRIM_CHARS or value[-1] in TRIM_CHARS or value.startswith('="')):
        stripped = value.strip(TRIM_CHARS)
        if stripped.startswith('="') and stripped.endswith('"') and len(stripped) >= 3:
            inner = stripped[2:-1]
            # Only a well-formed formula string: every quote inside is doubled.
            if '"' not in inner.replace('""', ""):
                stripped = inner.replace('""', '"')
        if stripped == value:
            break
        value = stripped
    return value


# A sourceRow cell holds at most this many digits (a row number; Python refuses to parse 4,300 digits).
_SOURCE_DIGITS = 18
SOURCE_NOTE = ("sourceRow is not a row number (a whole number from 1); the row's own number was recorded as "
               "its sourceRow")


def source_row(cell: str | None) -> tuple[int, str | None]:
    """The original row number a sourceRow cell gives (0: none, the row is its own source), and a note when
    the cell holds something that is not one (the row is still read: the number is only bookkeeping)."""
    if not cell:
        return 0, None
    if not cell.isdigit():  # the common case, digits alone, skips normalise()
        cell = normalise(cell)
        if not cell:
            return 0, None
    if cell.isascii() and cell.isdigit() and len(cell) <= _SOURCE_DIGITS and int(cell) > 0:
        return int(cell), None
    return 0, SOURCE_NOTE


def _is_email(value: str) -> bool:
    """The fast path's email test; _EMAIL_SHAPE says the same for printable values."""
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain[1:-1] and "@" not in domain and " " not in value and value.isprintable()


def _describe(ch: str) -> str:
    name = _CONTROL_NAMES.get(ch, "") or unicodedata.name(ch, "control character")
    return f"U+{ord(ch):04X} {name.lower()}"


def _text_problems(column: str, value: str, pattern: re.Pattern[str], out: list[Found]) -> None:
    if len(value) > MAX_LENGTH[column]:
        out.append((column, "too-long", f"{column} is {len(value)} characters long, more than the "
                    f"{MAX_LENGTH[column]} allowed; shorten it"))
    found = pattern.search(value)
    if found:
        out.append((column, "control-character", f"{column} contains an invisible character "
                    f"({_describe(found.group())}) at position {found.start() + 1}; delete it"))


def check_identifier_name(raw: str) -> tuple[str | None, str | None]:
    """The documented spelling of `raw` (any letter case), or None and the problem message."""
    canonical = IDENTIFIER_NAMES.get(raw.lower())
    if canonical is not None:
        return canonical, None
    return None, _unknown_name(raw)


# The suggestions (difflib) cost tens of microseconds; a broken file repeats the same few mistakes.
@functools.lru_cache(maxsize=1024)
def _unknown_name(raw: str) -> str:
    if not raw:
        return f"identifierName is empty; use one of {_DOCUMENTED}"
    guess = guess_identifier_name(raw)
    hint = f' (did you mean "{guess}"?)' if guess else ""
    return (f'identifierName "{show(raw)}" is not a documented identifier name{hint}; '
            f"use one of {_DOCUMENTED}")


def guess_identifier_name(raw: str) -> str | None:
    """The documented identifier name that ``raw`` most likely means (``Mobile No``, ``phone``, ``e-mail``,
    ``mobil``), for a did-you-mean; None when none is close."""
    key = re.sub(r"[\s_\-.]", "", raw.lower())
    guess = IDENTIFIER_NAMES.get(key) or _NAME_SYNONYMS.get(key)
    if guess is None:
        close = difflib.get_close_matches(key, IDENTIFIER_NAMES, n=1, cutoff=0.6)
        guess = IDENTIFIER_NAMES[close[0]] if close else None
    return guess


def check_identifier_value(name: str | None, value: str) -> tuple[str, str] | None:
    """(kind, message) when `value` cannot be a `name` identifier; None when it can."""
    if not value:
        what = f"the customer's {name}" if name else "the identifier"
        return "empty-value", f"identifierValue is empty; fill in {what}"
    if name == "email" and not _EMAIL_SHAPE.fullmatch(value):
        return "bad-email", (f'identifierValue "{show(value)}" is not an email address; it needs one @ '
                             "with text on both sides, a dot in the domain and no spaces")
    if name == "mobile" and not _MOBILE.fullmatch(value):
        cleaned = _MOBILE_PUNCTUATION.sub("", value)
        fix = f'write it as "{cleaned}"' if _MOBILE.fullmatch(cleaned) else "correct the number"
        low, high = MOBILE_DIGITS
        return "bad-mobile", (f'identifierValue "{show(value)}" is not a mobile number ({low} to {high} '
                              f"digits, an optional leading +, no spaces or dashes); {fix}")
    return None


def check_label(label: str, rules: RowRules) -> tuple[str, str] | None:
    """(kind, message) when the label (default already applied) is empty or not allowed."""
    if not label:
        return "empty-label", "label is empty and no default label is set; fill in the label or pass --label"
    allowed = rules.allowed_labels
    if allowed and label not in allowed:
        return "label-not-allowed", _label_not_allowed(label, allowed)
    return None


@functools.lru_cache(maxsize=1024)
def _label_not_allowed(label: str, allowed: frozenset[str]) -> str:
    by_lower = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(label.lower(), by_lower, n=1, cutoff=0.6)
    hint = f' (did you mean "{by_lower[close[0]]}"?)' if close else ""
    listed = ", ".join(sorted(allowed))
    return (f'label "{show(label)}" is not one of the allowed labels ({listed}){hint}; '
            "correct it or add it to --labels")


def shape_problem(cells: int, columns: int, at_least: bool = False) -> tuple[str, str]:
    """(kind, message) for a row whose cell count differs from the header's column count."""
    if cells < columns:
        return "too-few-cells", (f"row has {cells} cells but the header has {columns} columns; add the "
                                 "missing cells (a line break inside an unquoted value splits a row)")
    count = f"at least {cells}" if at_least else str(cells)
    return "too-many-cells", (f"row has {count} cells but the header has {columns} columns; quote values "
                              "that contain the delimiter, or remove the extra cells")


def show(text: str, limit: int = 60) -> str:
    """`text` fit for a one-line message: invisible characters escaped, long text shortened."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def check_row(number: int, name: str, value: str, label: str | None, reason: str | None,
              rules: RowRules, shape: tuple[str, str] | None = None, source: str | None = None) -> CheckedRow:
    """Check one row. `label`/`reason` are None when the column is absent; `shape` is a (kind,
    message) cell-count problem found by the reader, which replaces the field checks because the
    cells of such a row are probably not in their columns. `source` is the sourceRow cell, if the file
    has that column."""
    # This runs once per row of files with a million rows: the common case (clean, valid) is decided
    # by the inline tests below, and only a row that fails one of them goes through _explain.
    notes: list[str] = []
    origin = 0
    if source:
        origin, note = source_row(source)
        if note is not None:
            notes.append(note)
    if name and (name[0] in _EDGE or name[-1] in TRIM_CHARS):
        name = normalise(name)
    if value and (value[0] in _EDGE or value[-1] in TRIM_CHARS):
        if value[0] in TRIM_CHARS or value[-1] in TRIM_CHARS:
            notes.append("spaces around identifierValue were trimmed")
        value = normalise(value)
    if label and (label[0] in _EDGE or label[-1] in TRIM_CHARS):
        label = normalise(label)
    if reason and (reason[0] in _EDGE or reason[-1] in TRIM_CHARS):
        reason = normalise(reason)
    name = name or rules.default_name or ""
    label = label or rules.default_label or ""
    reason = reason or rules.default_reason or ""
    row = Row(number, name, value, label, reason, origin)
    canonical = IDENTIFIER_NAMES.get(name.lower())
    allowed = rules.allowed_labels
    # str.isprintable() is False for every control, format and odd space character: a cheap superset
    # of what the regexes in _explain look for.
    if (
        shape is None
        and canonical is not None
        and 0 < len(value) <= _MAX_VALUE
        and (_MOBILE.fullmatch(value) if canonical == "mobile"  # (digits: nothing in BROKEN_IDS matches)
             else _is_email(value) and "\ufffd" not in value if canonical == "email"
             else value.isprintable() and not _SUSPECT.search(value))
        and 0 < len(label) <= _MAX_LABEL
        and (label in allowed if allowed else label.isprintable())
        and 0 < len(reason) <= _MAX_REASON
        and reason.isprintable()
    ):
        return CheckedRow(row, [], notes, canonical, [])
    found = _explain(row, rules, shape)
    return CheckedRow(row, [f[2] for f in found], notes, canonical or name, [f[:2] for f in found])


def _explain(row: Row, rules: RowRules, shape: tuple[str, str] | None) -> list[Found]:
    """Every problem of a row that the fast path in check_row refused, in column order."""
    if shape is not None:
        return [("row", *shape)]
    found: list[Found] = []
    canonical, name_problem = check_identifier_name(row.identifier_name)
    if name_problem is not None:
        found.append(("identifierName", "unknown-identifier-name", name_problem))
        _text_problems("identifierName", row.identifier_name, _CONTROL_IN_IDENTIFIER, found)
    value_problem = broken_id(canonical or row.identifier_name, row.identifier_value) if row.identifier_value else None
    if value_problem is None:
        value_problem = check_identifier_value(canonical, row.identifier_value)
    if value_problem is not None:
        found.append(("identifierValue", *value_problem))
    _text_problems("identifierValue", row.identifier_value, _CONTROL_IN_IDENTIFIER, found)
    label_problem = check_label(row.label, rules)
    if label_problem is not None:
        found.append(("label", *label_problem))
    _text_problems("label", row.label, _CONTROL, found)
    if not row.reason:
        found.append(("reason", "empty-reason", "reason is empty and no default reason is set; "
                      "fill in the reason or pass --reason"))
    _text_problems("reason", row.reason, _CONTROL_IN_REASON, found)
    return found


# A workbook's identifierValue cell stored as a number (not as text): the digits it shows may not be the ones
# typed (a leading 0 or + dropped, a long card number rounded). The workbook reader marks such rows with
# mark_stored_as_number; the row is invalid, whatever else is right with it.
NUMERIC_ID = "stored as a number: leading zeros or a + may be lost; format the column as Text"
PROBLEM_KINDS["stored-as-number"] = "identifierValue is a number cell in the sheet, not text"


def mark_stored_as_number(checked: CheckedRow) -> None:
    """Make ``checked`` invalid because its identifierValue cell was stored as a number in a workbook."""
    checked.problems.append(f'identifierValue "{show(checked.row.identifier_value)}" is {NUMERIC_ID}, then '
                            "type the ids again (or paste them as text)")
    checked.kinds.append(("identifierValue", "stored-as-number"))
