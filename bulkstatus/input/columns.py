"""Which header cell holds which field: our own column names, the user's (`--column FIELD=HEADER`, a
`[columns]` table), and `--identifier-name` for a file without an identifierName column.

`match_header` finds every field in a header at once and reports every missing, misspelt or repeated
column in one message, each with its did-you-mean, so that a header is fixed in one go, not one column a
run. `parse_columns` and `parse_identifier_name` turn a setting's value (a flag, a variable, the config
file, run.json) into what the reader takes, or a ConfigError that says what to write instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bulkstatus.errors import ConfigError, InputFileError
from bulkstatus.input import rules
from bulkstatus.model import IDENTIFIER_NAMES

__all__ = ["COLUMNS", "SOURCE_COLUMN", "header_alias", "match_header", "parse_columns", "parse_identifier_name"]

COLUMNS = ("identifierName", "identifierValue", "label", "reason")
# Optional: the row number of the original file, which retry.csv and fix.csv carry into every re-run.
SOURCE_COLUMN = "sourceRow"
_FIELD_BY_ALIAS = {c.lower(): c for c in COLUMNS}
_DOCUMENTED = ", ".join(IDENTIFIER_NAMES.values())


def header_alias(cell: str) -> str:
    """How header cells are compared: case, surrounding spaces, `_`, `-` and inner spaces ignored."""
    return re.sub(r"[\s_\-]", "", cell.lower())


# --- settings ---------------------------------------------------------------------------------------


def parse_columns(value: Any, where: str) -> dict[str, str]:
    """``{field: header}`` from ``FIELD=HEADER`` strings (flags; the variable separates them with ``;``),
    or a table (the config file's ``[columns]``, run.json); raises ConfigError naming ``where``."""
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        items = value.split(";") if isinstance(value, str) else list(value)
        pairs = []
        for item in items:
            text = str(item)
            if not text.strip():
                continue
            name, equals, header = text.partition("=")
            if not equals:
                raise ConfigError(f'{where} "{text}" is not FIELD=HEADER: write e.g. identifierValue="Mobile No"')
            pairs.append((name, header))
    mapping: dict[str, str] = {}
    for raw_field, header in pairs:
        known = _FIELD_BY_ALIAS.get(header_alias(raw_field))
        if known is None:
            close = difflib.get_close_matches(header_alias(raw_field), list(_FIELD_BY_ALIAS), n=1, cutoff=0.6)
            hint = f' (did you mean {_FIELD_BY_ALIAS[close[0]]}?)' if close else ""
            raise ConfigError(f'{where}: "{rules.show(raw_field)}" is not a field{hint}; the fields are '
                              f"{', '.join(COLUMNS)}")
        field = known
        if not isinstance(header, str) or not header.strip(rules.TRIM_CHARS):
            raise ConfigError(f"{where}: the header for {field} is empty; write {field}=HEADER, the column's "
                              "name as the file's first line has it")
        if field in mapping:
            raise ConfigError(f"{where}: {field} is given twice; keep one")
        mapping[field] = header.strip(rules.TRIM_CHARS)
    by_header: dict[str, str] = {}
    for field, header in mapping.items():
        if header_alias(header) in by_header:
            raise ConfigError(f'{where}: {by_header[header_alias(header)]} and {field} both name the column '
                              f'"{rules.show(header)}"; one column holds one field')
        by_header[header_alias(header)] = field
    return mapping


def parse_identifier_name(value: Any, where: str) -> str:
    """The documented spelling of an identifier name given as a setting (any letter case)."""
    canonical, problem = rules.check_identifier_name(str(value).strip())
    if canonical is None:
        raise ConfigError(f"{where}: {problem}")
    return canonical


# --- the header -------------------------------------------------------------------------------------


def match_header(path: Path, columns: Sequence[str], mapping: Mapping[str, str], defaults: Mapping[str, str | None]
                 ) -> dict[str, int]:
    """Position of each field (and sourceRow) in ``columns``; InputFileError naming every problem at once.

    A field named by ``mapping`` is the cell that matches its header (compared as ``header_alias`` does);
    when no cell does but the file has our own name for the field (a retry.csv or fix.csv of that run,
    written with our names), that one. Other fields are found by their own names. ``defaults`` holds
    the value given for a field whose column may be absent (identifierName, label, reason)."""
    cells = [header_alias(c) for c in columns]
    found: dict[str, int] = {}
    problems: list[str] = []

    def take(field: str, wanted: str) -> bool:
        at = [i for i, alias in enumerate(cells) if alias == wanted and i not in found.values()]
        if len(at) > 1:
            problems.append(f'column {field} appears twice ("{rules.show(columns[at[0]])}" and '
                            f'"{rules.show(columns[at[1]])}"); remove or rename one')
        if at:
            found[field] = at[0]
        return bool(at)

    for field, header in mapping.items():  # first, so that a mapped cell is not also taken by its name
        if header_alias(header) in cells:
            take(field, header_alias(header))
    for field in (*COLUMNS, SOURCE_COLUMN):
        if field not in found:
            take(field, field.lower())
    _refuse_headerless(path, columns, found, defaults)
    for field in COLUMNS:
        if field in found:
            continue
        if field in mapping:  # even when a default could stand in: the user said where it is
            problems.append(f'column "{rules.show(mapping[field])}" (--column {field}) is not in the header'
                            f"{_closest_cell(columns, mapping[field], found)}")
        elif not defaults.get(field):
            problems.append(_missing(columns, field, found, mapping))
    if problems:
        listed = ", ".join(rules.show(c, 30) for c in columns)
        raise InputFileError(f"{path}: {'; '.join(problems)}; found columns: {listed}; expected: "
                             f"{', '.join(COLUMNS)} (or name yours with --column FIELD=HEADER; identifierName, "
                             "label and reason may be left out when --identifier-name, --label and --reason "
                             "give them)")
    return found


def _refuse_headerless(path: Path, columns: Sequence[str], found: Mapping[str, int],
                       defaults: Mapping[str, str | None]) -> None:
    """A first line of data taken for a header would lose a customer: refuse it, with the line to add."""
    if found:
        return
    first = columns[0].strip(rules.TRIM_CHARS)
    second = columns[1] if len(columns) > 1 else ""
    alone = len(columns) == 1 or not any(c.strip(rules.TRIM_CHARS) for c in columns[1:])
    kind = "email" if "@" in first else "mobile" if first.strip(" +").isdigit() and first.strip(" +") else None
    if not alone and (header_alias(first) in IDENTIFIER_NAMES or "@" in second or second.strip(" +").isdigit()):
        fix = "add the line identifierName,identifierValue,label,reason at the top"
    elif alone and kind is not None:
        name = defaults.get("identifierName") or kind
        fix = f"add the line identifierValue at the top and pass --identifier-name {name}"
    else:
        return
    raise InputFileError(f'{path}: has no header row (the first line "{rules.show(",".join(columns))}" looks '
                         f"like data); {fix}")


def _missing(columns: Sequence[str], field: str, found: Mapping[str, int], mapping: Mapping[str, str]) -> str:
    """What to say of a field that no cell names: the closest cell, and the flag that would take it."""
    free = [c for i, c in enumerate(columns) if i not in found.values() and c.strip(rules.TRIM_CHARS)]
    like = _like_field(free, field)
    if like is not None:
        return (f'column {field} is missing (did you mean "{rules.show(like)}"? rename it to {field}, or pass '
                f'--column {field}="{rules.show(like)}")')
    if field in ("label", "reason"):
        return f"column {field} is missing and no default {field} is set; add a {field} column or pass --{field}"
    # A column named like a kind of identifier ("Mobile No", "Email") holds the values of one kind.
    kinds = [(c, rules.guess_identifier_name(c)) for c in free]
    named = next(((c, k) for c, k in kinds if k is not None), None)
    if field == "identifierValue":
        hint = " (if the file uses another delimiter, pass --delimiter)" if len(columns) == 1 and not named else ""
        if named is not None and "identifierName" not in found:
            hint = (f' ("{rules.show(named[0])}" looks like a column of {named[1]} values: pass '
                    f'--column identifierValue="{rules.show(named[0])}" --identifier-name {named[1]})')
        elif named is not None:
            hint = f' (is it "{rules.show(named[0])}"? pass --column identifierValue="{rules.show(named[0])}")'
        return f"column identifierValue is missing{hint}"
    which = named[1] if named is not None else "NAME"
    hint = (f'; add an identifierName column, or pass --identifier-name {which} when every row has the same '
            f"kind ({_DOCUMENTED})")
    if "identifierValue" not in found and "identifierValue" not in mapping and named is not None:
        hint = ""  # the identifierValue problem already says which flags to pass
    return f"column identifierName is missing{hint}"


def _like_field(free: Sequence[str], field: str) -> str | None:
    """The unrecognised cell most like ``field``, if ``field`` is also the one it is most like (so that
    ``identifer_value`` is offered for identifierValue, never for identifierName)."""
    best: tuple[float, str] | None = None
    for cell in free:
        ratios = {name: difflib.SequenceMatcher(None, header_alias(cell), name.lower()).ratio() for name in COLUMNS}
        target = max(ratios, key=lambda name: ratios[name])
        if target == field and ratios[target] >= 0.6 and (best is None or ratios[target] > best[0]):
            best = (ratios[target], cell)
    return best[1] if best else None


def _closest_cell(columns: Sequence[str], header: str, found: Mapping[str, int]) -> str:
    free = {header_alias(c): c for i, c in enumerate(columns) if i not in found.values()}
    close = difflib.get_close_matches(header_alias(header), list(free), n=1, cutoff=0.6)
    return f' (did you mean "{rules.show(free[close[0]])}"?)' if close else ""
