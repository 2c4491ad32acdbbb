"""Row checks (pure) and the duplicate index."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkstatus.input.duplicates import DuplicateIndex, duplicate_message, key_hash
from bulkstatus.input.rules import (
    MAX_LENGTH,
    PROBLEM_KINDS,
    RowRules,
    _explain,
    check_identifier_name,
    check_row,
    normalise,
    shape_problem,
)
from bulkstatus.model import IDENTIFIER_NAMES

RULES = RowRules()


def problems(name: str, value: str, label: str | None = "Suspended", reason: str | None = "fraud",
             rules: RowRules = RULES) -> list[str]:
    return check_row(1, name, value, label, reason, rules).problems


@pytest.mark.parametrize(("raw", "expected"), [
    ("abc", "abc"),
    ("  abc\t", "abc"),
    ("\u00a0abc\u3000", "abc"),
    ('="00123"', "00123"),
    (' =" 00123 " ', "00123"),
    ('="a""b"', 'a"b'),
    ('="a"b"', '="a"b"'),  # not a well-formed guard: left alone
    ('=""', ""),
    ("=SUM(A1)", "=SUM(A1)"),
    ("a\n", "a\n"),  # line breaks are content, not trimmed
])
def test_normalise_trims_and_unwraps(raw: str, expected: str) -> None:
    """Spaces around a value are trimmed and Excel's ="..." guard is unwrapped, nothing else."""
    assert normalise(raw) == expected
    assert normalise(expected) == expected


@pytest.mark.parametrize("name", ["mobile", "MOBILE", "Mobile", "externalid", "EXTERNALID", "martjackid"])
def test_identifier_name_any_case_gives_documented_spelling(name: str) -> None:
    """Any letter case is accepted; the documented spelling is what gets sent."""
    canonical, problem = check_identifier_name(name)
    assert problem is None
    assert canonical == IDENTIFIER_NAMES[name.lower()]
    assert check_row(1, name, "x@example.com" if "mail" in name else "+919800000001", "S", "r",
                     RULES).canonical_name == canonical


@pytest.mark.parametrize(("name", "guess"), [("mobil", "mobile"), ("e-mail", "email"), ("phone", "mobile"),
                                             ("external_id", "externalId"), ("card", "cardnumber")])
def test_unknown_identifier_name_suggests_closest(name: str, guess: str) -> None:
    """A misspelt or colloquial identifier name is invalid and the message suggests the documented one."""
    canonical, problem = check_identifier_name(name)
    assert canonical is None
    assert problem is not None and f'(did you mean "{guess}"?)' in problem


@pytest.mark.parametrize(("value", "ok"), [
    ("a@example.com", True), ("first.last+tag@sub.example.co.in", True), ("a@b", False), ("a.example.com", False),
    ("a@@b.com", False), ("a b@c.com", False), ("@b.com", False), ("a@.com", False), ("a@b.", False),
    ("a\u200b@example.com", False), ("a\x00@example.com", False),
])
def test_email_needs_one_at_and_a_domain(value: str, ok: bool) -> None:
    """An email needs one @ with text on both sides, a dot inside the domain, and no spaces."""
    assert (problems("email", value) == []) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("+919800000001", True), ("919800000001", True), ("123456", True), ("123456789012345", True),
    ("12345", False), ("1234567890123456", False), ("+91 98000 00001", False), ("98-00-00-00", False),
    ("++919800000001", False), ("91980000000x", False), ("٩١٩٨٠٠٠٠٠٠٠١", False),
])
def test_mobile_is_6_to_15_ascii_digits(value: str, ok: bool) -> None:
    """A mobile is 6 to 15 ASCII digits with an optional leading +."""
    assert (problems("mobile", value) == []) is ok


def test_mobile_with_spaces_suggests_the_digits() -> None:
    """The fix for a mobile written with spaces or dashes is the number without them."""
    assert 'write it as "+919800000001"' in problems("mobile", "+91 98000-00001")[0]


def test_labels_allowed_are_case_sensitive_with_suggestion() -> None:
    """With --labels, a label must match exactly; the closest allowed label is suggested."""
    rules = RowRules(allowed_labels=frozenset({"Suspended", "Active"}))
    assert problems("mobile", "+919800000001", "Suspended", rules=rules) == []
    for label in ("Supended", "suspended"):
        (message,) = problems("mobile", "+919800000001", label, rules=rules)
        assert '(did you mean "Suspended"?)' in message and "--labels" in message


def test_defaults_fill_empty_or_absent_label_and_reason() -> None:
    """An empty cell or an absent column takes the default; without one the row is invalid."""
    rules = RowRules(default_label="Suspended", default_reason="bulk")
    for label, reason in (("", ""), (None, None), ("  ", " ")):
        checked = check_row(3, "mobile", "+919800000001", label, reason, rules)
        assert checked.problems == []
        assert (checked.row.label, checked.row.reason) == ("Suspended", "bulk")
    assert [kind for _, kind in check_row(3, "mobile", "+919800000001", "", None, RULES).kinds] == [
        "empty-label", "empty-reason"]


def test_length_bounds() -> None:
    """Values up to the documented length pass; one character more is invalid."""
    value, label, reason = "x" * MAX_LENGTH["identifierValue"], "L" * MAX_LENGTH["label"], "r" * MAX_LENGTH["reason"]
    assert problems("externalId", value, label, reason) == []
    assert "257 characters long, more than the 256 allowed" in problems("externalId", value + "x")[0]
    assert "1001 characters long" in problems("externalId", "x", "L", reason + "r")[0]


def test_control_characters() -> None:
    """Control characters are refused, except line breaks and tabs inside reason."""
    assert problems("mobile", "+919800000001", "S", "line one\r\nline two\tend") == []
    (message,) = problems("externalId", "ab\ncd")
    assert "U+000A line break" in message and "position 3" in message
    assert "U+200B zero width space" in problems("externalId", "ab\u200bcd")[0]
    assert "U+0007" in problems("mobile", "+919800000001", "S", "bell\x07")[0]
    assert problems("mobile", "+919800000001", "S\t", "r") == []  # trimmed, not refused


def test_shape_problem_replaces_field_checks() -> None:
    """A row with the wrong number of cells reports only that, since its cells are misplaced."""
    checked = check_row(4, "mobil", "", None, None, RULES, shape_problem(2, 4))
    assert checked.kinds == [("row", "too-few-cells")]
    assert checked.problems == [shape_problem(2, 4)[1]]
    assert "at least 6 cells" in shape_problem(6, 4, at_least=True)[1]


def test_trim_note_and_values_kept() -> None:
    """Trimming identifierValue leaves a note; an invalid row keeps its values as read."""
    checked = check_row(7, " Mobil ", " 12 ", "L", "r", RULES)
    assert checked.notes == ["spaces around identifierValue were trimmed"]
    assert (checked.row.identifier_name, checked.row.identifier_value, checked.canonical_name) == (
        "Mobil", "12", "Mobil")


TOKENS = st.sampled_from(["mobile", "Email", "externalId", "mobil", "", " ", "+91", "9800000001", "12", "a@b.co",
                          "@", ".", "x", "\n", "\t", "\u00a0", "\u200b", "\x07", '="', '"', "=", "Suspended"])
FIELD = st.lists(TOKENS, max_size=4).map("".join)


@settings(max_examples=150, deadline=None)
@given(FIELD, FIELD, FIELD, FIELD, st.booleans())
def test_fast_path_agrees_with_full_explanation(name: str, value: str, label: str, reason: str,
                                                labels: bool) -> None:
    """check_row's fast path accepts a row exactly when the full checks find no problem in it."""
    rules = RowRules(allowed_labels=frozenset({"Suspended"}) if labels else None)
    checked = check_row(1, name, value, label, reason, rules)
    assert checked.problems == [m for _, _, m in _explain(checked.row, rules, None)]
    assert len(checked.kinds) == len(checked.problems)
    for (column, kind), message in zip(checked.kinds, checked.problems, strict=True):
        assert kind in PROBLEM_KINDS
        assert message.startswith(column) and "\n" not in message and "\r" not in message


# --- duplicates ---------------------------------------------------------------------------------


def reference(keys: list[tuple[str, str]]) -> list[int | None]:
    """What check answers, computed with a plain dict."""
    first: dict[tuple[str, str], int] = {}
    answers = []
    for number, key in enumerate(keys, 1):
        answers.append(first.get(key))
        first.setdefault(key, number)
    return answers


def test_duplicate_index_matches_a_dict() -> None:
    """check returns the first row of a repeated key, through several table growths."""
    rng = random.Random(7)
    keys = [(rng.choice(["mobile", "email"]), str(rng.randrange(15_000))) for _ in range(20_000)]
    index = DuplicateIndex()
    assert [index.check(key, number) for number, key in enumerate(keys, 1)] == reference(keys)
    assert len(index) == len(set(keys))


def test_check_many_agrees_with_check() -> None:
    """Batches, mixed with single checks, give the same answers, including repeats inside a batch."""
    rng = random.Random(8)
    keys = [("mobile", str(rng.randrange(5_000))) for _ in range(20_000)]
    index, got = DuplicateIndex(), []
    for start in range(0, len(keys), 1_500):
        batch = keys[start : start + 1_500]
        numbers = list(range(start + 1, start + 1 + len(batch)))
        if start // 1_500 % 3 == 0:
            got += [index.check(key, number) for key, number in zip(batch, numbers, strict=True)]
        else:
            got += index.check_many(batch, numbers)
    assert got == reference(keys)
    assert index.check_many([], []) == []


def test_duplicate_index_is_compact() -> None:
    """The index holds at most 48 bytes per key (about 25 at a million keys)."""
    index = DuplicateIndex()
    index.check_many([("email", f"user{i}@example.com") for i in range(50_000)], range(1, 50_001))
    assert index.nbytes / len(index) <= 48


def test_key_hash_is_stable_and_distinguishes_fields() -> None:
    """The hash is the same in every process, and name and value cannot run into each other."""
    assert key_hash(("mobile", "+919800000001")) == 13663061524903922402
    assert key_hash(("mobile", "1")) != key_hash(("mobile1", ""))
    assert "row 12" in duplicate_message(12)
