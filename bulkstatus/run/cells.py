"""Cells of results.csv, retry.csv and fix.csv that a spreadsheet opens as text, not as a formula or a number.

Excel and LibreOffice take a cell that starts with ``=``, ``+``, ``-`` or ``@`` for a formula (and may
strip a leading tab or CR and then do the same): ``=HYPERLINK(...)`` in a reason would become a live
link, ``+919853464010`` a number without its ``+``. Such a value is written as the formula string
``="<value>"`` with every ``"`` inside doubled, which a spreadsheet shows as exactly ``<value>``.

The reader (``bulkstatus.input.rules.normalise``) unwraps ``="..."`` and un-doubles the quotes inside, so
a value read from an input file comes back exactly when retry.csv or fix.csv is fed back in: such a value never
has spaces around it and is never itself a ``="..."`` guard, since reading unwraps guards until none is
left. ``tests/test_spreadsheet_safe.py`` has the table of cases.
"""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "spreadsheet_safe"]

# What a spreadsheet may read as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a cell a spreadsheet shows as that text: ``="..."`` when it starts like a formula."""
    if value.startswith(FORMULA_STARTS):
        return '="' + value.replace('"', '""') + '"'
    return value
