"""A corpus of bad and unusual input files, as data, so that any test can reuse it.

Each case is the exact bytes of a file, the reader options (with the CLI flags that give them), and
either the fatal message a run or validate must stop with (exit 2, nothing sent) or the outcome of
every data row: "valid", "duplicate", or "invalid:<kind>[+<kind>...]" with the kinds of
bulkstatus.input.rules.PROBLEM_KINDS.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

HEADER = "identifierName,identifierValue,label,reason"


@dataclass(frozen=True)
class Case:
    name: str  # also the file name to write the bytes to
    data: bytes
    fatal: str | None = None  # a substring of the one-line InputFileError message
    rows: tuple[str, ...] = ()  # expected outcome per data row, when not fatal
    options: dict[str, Any] = field(default_factory=dict)  # ReadOptions keyword arguments
    values: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)  # row -> values read

    @property
    def exit_status(self) -> int:
        """What `bulkstatus validate` (and `run --strict`) exits with for this file."""
        if self.fatal is not None:
            return 2
        return 1 if any(r.startswith("invalid") for r in self.rows) else 0

    @property
    def cli_args(self) -> list[str]:
        """The command-line flags that give `options`."""
        flags = {"encoding": "--encoding", "delimiter": "--delimiter", "default_label": "--label",
                 "default_reason": "--reason"}
        args: list[str] = []
        for key, value in self.options.items():
            if key == "allowed_labels":
                args += ["--labels", ",".join(sorted(value))]
            else:
                args += [flags[key], value]
        return args


def utf8(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode("utf-8")


GOOD = "mobile,+919800000001,Suspended,fraud check"
BIG_PREFIX = [HEADER] + [f"mobile,+91980{i:07d},Suspended,bulk {i}" for i in range(3000)]

CORPUS: list[Case] = [
    # --- fatal: the file cannot be read or understood (exit 2, nothing sent) ---------------------
    Case("empty.csv", b"", fatal="is empty"),
    Case("blank-lines-only.csv", b"\n\n   \n\r\n", fatal="contains only blank lines"),
    Case("header-only.csv", utf8(HEADER), fatal="has a header but no data rows"),
    Case("header-only-bom-crlf.csv", codecs.BOM_UTF8 + utf8(HEADER, "", end="\r\n"),
         fatal="has a header but no data rows"),
    Case("no-header.csv", utf8(GOOD, "email,a@example.com,Suspended,x"), fatal="has no header row"),
    Case("missing-value-column.csv", utf8("identifierName,label,reason", "mobile,Suspended,x"),
         fatal="column identifierValue is missing"),
    Case("misspelt-column.csv", utf8("identifierName,identifer_value,label,reason", GOOD),
         fatal='did you mean "identifer_value"? rename it to identifierValue'),
    Case("duplicate-column.csv", utf8("identifierName,identifierValue,label,Label,reason", GOOD + ",x"),
         fatal='column label appears twice ("label" and "Label")'),
    Case("no-label-column.csv", utf8("identifierName,identifierValue,reason", "mobile,+919800000001,x"),
         fatal="column label is missing and no default label is set; add a label column or pass --label"),
    Case("workbook.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + bytes(200),
         fatal="cannot be read as an Excel workbook (.xlsx) (its zip archive is damaged"),
    Case("old-workbook.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200),
         fatal="cannot be read as an Excel 97-2003 workbook (.xls)"),
    Case("gzipped.csv.gz", b"\x1f\x8b\x08\x00" + bytes(50), fatal="gzip-compressed"),
    Case("binary.bin", b"\x00\x01\x02\x03binary\x00\xff" * 20, fatal="NUL bytes"),
    Case("utf16-no-bom.csv", f"{HEADER}\n{GOOD}\n".encode("utf-16-le"),
         fatal="looks like UTF-16 without a byte-order mark"),
    Case("cp1252-without-flag.csv", f"{HEADER}\n{GOOD}\nemail,jos\u00e9@example.com,Suspended,x\n".encode("cp1252"),
         fatal="line 3 has bytes that are not valid utf-8 (e9)"),
    Case("bad-utf8-far-down.csv", utf8(*BIG_PREFIX) + b"email,caf\xe9@example.com,Suspended,x\n",
         fatal="line 3002 has bytes that are not valid utf-8"),
    Case("unclosed-quote.csv", utf8(HEADER, GOOD, 'mobile,"+919800000002,Suspended,x', GOOD),
         fatal="a quoted value that starts on line 3 is never closed"),
    Case("text-after-quote.csv", utf8(HEADER, GOOD, 'mobile,"+91"98,Suspended,x'),
         fatal="line 3 has text right after a closing quote"),
    Case("unclosed-quote-far-down.csv", utf8(*BIG_PREFIX, 'mobile,"+919800000002,Suspended,x', GOOD),
         fatal="a quoted value that starts on line 3002 is never closed"),
    Case("unknown-encoding.csv", utf8(HEADER, GOOD), options={"encoding": "klingon"},
         fatal='unknown encoding "klingon"'),
    Case("pipe-delimited.csv", utf8(HEADER.replace(",", "|"), GOOD.replace(",", "|")),
         fatal="if the file uses another delimiter, pass --delimiter"),
    Case("bad-delimiter-option.csv", utf8(HEADER, GOOD), options={"delimiter": "::"},
         fatal="--delimiter must be one character"),
    # --- readable: every row gets an outcome ------------------------------------------------------
    Case("bom-crlf.csv", codecs.BOM_UTF8 + utf8(HEADER, GOOD, end="\r\n"), rows=("valid",)),
    Case("utf16le-bom-tab.csv", codecs.BOM_UTF16_LE + f"{HEADER}\n{GOOD}\n".replace(",", "\t").encode("utf-16-le"),
         rows=("valid",)),
    Case("utf16be-bom-semicolon.csv",
         codecs.BOM_UTF16_BE + f"{HEADER}\r\n{GOOD}\r\n".replace(",", ";").encode("utf-16-be"), rows=("valid",)),
    Case("cp1252-semicolon.csv", f"{HEADER}\r\nemail;jos\u00e9@example.com;Gesperrt;Kündigung\r\n".replace(",", ";")
         .encode("cp1252"), options={"encoding": "cp1252"}, rows=("valid",),
         values={1: ("email", "jos\u00e9@example.com", "Gesperrt", "Kündigung")}),
    Case("old-mac-cr.csv", utf8(HEADER, GOOD, "email,a@example.com,Suspended,x", end="\r"), rows=("valid", "valid")),
    Case("no-final-newline.csv", utf8(HEADER) + GOOD.encode(), rows=("valid",)),
    Case("quoted-specials.csv", utf8(
        HEADER,
        'email,a@example.com,Suspended,"closed, by ""request"""',
        'mobile,+919800000002,Suspended,"line one\nline two"',
        'externalId,"ab\ncd",Suspended,x',
    ), rows=("valid", "valid", "invalid:control-character"),
        values={1: ("email", "a@example.com", "Suspended", 'closed, by "request"'),
                2: ("mobile", "+919800000002", "Suspended", "line one\nline two")}),
    Case("blank-and-empty-rows.csv", utf8("", HEADER, "", GOOD, ",,,", "  ,  ,,", "", "email,a@example.com,L,r"),
         rows=("valid", "valid"), values={2: ("email", "a@example.com", "L", "r")}),
    Case("spaces-around.csv", utf8(HEADER, " mobile , +919800000001\u00a0, Suspended ,  fraud "),
         rows=("valid",), values={1: ("mobile", "+919800000001", "Suspended", "fraud")}),
    Case("excel-text-guards.csv", utf8(HEADER, 'externalId,="00123",Suspended,x', 'cardnumber,"=""0042""",S,x'),
         rows=("valid", "valid"), values={1: ("externalId", "00123", "Suspended", "x"),
                                          2: ("cardnumber", "0042", "S", "x")}),
    Case("cell-counts.csv", utf8(HEADER, GOOD + ",extra", "mobile,+919800000001", GOOD + ",", GOOD + ",,",
                                 "mobile"),
         rows=("invalid:too-many-cells", "invalid:too-few-cells", "valid", "invalid:too-many-cells",
               "invalid:too-few-cells")),
    Case("identifier-names.csv", utf8(HEADER, "mobil,+919800000001,S,x", "MOBILE,+919800000002,S,x",
                                      "ExternalID,A-1,S,x", "phone,+919800000003,S,x", ",+919800000004,S,x"),
         rows=("invalid:unknown-identifier-name", "valid", "valid", "invalid:unknown-identifier-name",
               "invalid:unknown-identifier-name")),
    Case("emails-and-mobiles.csv", utf8(
        HEADER, "email,john.example.com,S,x", "email,a@@b.com,S,x", "email,a b@c.com,S,x", "email,a@b,S,x",
        "mobile,+91 98000 00001,S,x", "mobile,98-00-00,S,x", "mobile,12345,S,x", "mobile,1234567890123456,S,x",
        "mobile,919800000001,S,x", "email,,S,x",
    ), rows=("invalid:bad-email",) * 4 + ("invalid:bad-mobile",) * 4 + ("valid", "invalid:empty-value")),
    Case("labels-allowed.csv", utf8(HEADER, "mobile,+919800000001,Supended,x", "mobile,+919800000002,Active,x",
                                    "mobile,+919800000003,active,x"),
         options={"allowed_labels": frozenset({"Suspended", "Active"})},
         rows=("invalid:label-not-allowed", "valid", "invalid:label-not-allowed")),
    Case("defaults.csv", utf8(HEADER, "mobile,+919800000001,,", "mobile,+919800000002,Active,own reason"),
         options={"default_label": "Suspended", "default_reason": "bulk"}, rows=("valid", "valid"),
         values={1: ("mobile", "+919800000001", "Suspended", "bulk"),
                 2: ("mobile", "+919800000002", "Active", "own reason")}),
    Case("no-defaults.csv", utf8(HEADER, "mobile,+919800000001,,"), rows=("invalid:empty-label+empty-reason",)),
    Case("label-reason-columns-absent.csv", utf8("identifierValue,identifierName", "+919800000001,mobile"),
         options={"default_label": "Suspended", "default_reason": "bulk"}, rows=("valid",),
         values={1: ("mobile", "+919800000001", "Suspended", "bulk")}),
    Case("too-long.csv", utf8(HEADER, f"externalId,{'x' * 257},S,x", f"externalId,{'x' * 256},S,{'r' * 1001}"),
         rows=("invalid:too-long", "invalid:too-long")),
    Case("control-characters.csv", utf8(HEADER, "externalId,ab\x07c,S,x", "email,a\u200b@example.com,S,x",
                                        "mobile,+919800000001,S\x1b,x", 'mobile,+919800000002,S,"tab\there"'),
         rows=("invalid:control-character", "invalid:control-character", "invalid:control-character", "valid")),
    # Compared as the API would: emails in any letter case, mobiles by their digits, other ids as written.
    Case("duplicates.csv", utf8(HEADER, GOOD, "MOBILE,+919800000001,Suspended,again",
                                "mobile,919800000001,Suspended,x", "mobile,00919800000001,Suspended,x",
                                "email,a@example.com,S,x", "email,A@example.com,S,x", GOOD,
                                "externalId,EXT-1,S,x", "externalId,ext-1,S,x"),
         rows=("valid", "duplicate", "duplicate", "duplicate", "valid", "duplicate", "duplicate", "valid", "valid")),
    # One customer, two labels: every row of it (a row without a label says nothing of which one).
    Case("conflicting-labels.csv", utf8(HEADER, GOOD, "mobile,919800000001,Active,x", "email,a@example.com,S,x",
                                        "email,a@example.com,S,again", "mobile,919800000001,,x",
                                        "mobile,+919800000001,Suspended,no reason:", "MOBILE,+919800000001,Fraud,"),
         rows=("invalid:label-conflict", "invalid:label-conflict", "valid", "duplicate", "invalid:empty-label",
               "invalid:label-conflict", "invalid:empty-reason+label-conflict")),
    Case("text-stays-text.csv", utf8(HEADER, "externalId,007,NA,null", "externalId,None,N/A,nan",
                                     "externalId,1e5,TRUE,#N/A"),
         rows=("valid", "invalid:missing-value", "valid"), values={1: ("externalId", "007", "NA", "null"),
                                                   2: ("externalId", "None", "N/A", "nan"),
                                                   3: ("externalId", "1e5", "TRUE", "#N/A")}),
    Case("header-trailing-delimiter.csv",
         utf8(HEADER + ",", GOOD, GOOD.replace("1,", "2,") + ",", "mobile,+919800000003,S"),
         rows=("valid", "valid", "invalid:too-few-cells")),
    Case("header-aliases.csv", utf8(" IDENTIFIER_NAME ,Identifier Value,LABEL,reason", GOOD), rows=("valid",)),
    Case("results-as-input.csv", utf8(
        "row,identifierName,identifierValue,label,reason,outcome,requestId,state,httpStatus,errorCode,error,"
        "attempts,finishedAt",
        '1,mobile,+919800000001,Suspended,x,failed,,,503,,"Service Unavailable, retry",5,2024-01-01T00:00:00Z',
    ), rows=("valid",)),
]
