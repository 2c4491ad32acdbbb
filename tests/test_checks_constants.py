"""Constants spelled out for start-up speed still match what they stand for."""

from __future__ import annotations

import sys
import unicodedata

from bulkstatus.input.rules import TRIM_CHARS


def test_trim_chars_are_tab_and_every_unicode_space_separator() -> None:
    """TRIM_CHARS is tab plus every code point of category Zs, in code point order."""
    zs = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(ch) == "Zs")
    expected = "\t" + zs
    assert expected == TRIM_CHARS
