"""Reading a workbook: time and peak memory of each candidate reader, and of ``bulkstatus run --dry-run``.

Each measurement is a child process that reads every row of the first sheet and exits; its peak resident
set size comes from ``os.wait4`` (``ru_maxrss``), so the figures include the interpreter and the libraries
each reader imports. Readers:

- ``bulkstatus``: bulkstatus.input.sheets (expat, streamed; shared strings as one string and offsets)
- ``calamine``: python-calamine, ``get_sheet_by_index(0).iter_rows()`` (loads the sheet whole)
- ``openpyxl``: ``load_workbook(read_only=True)``, ``iter_rows(values_only=True)`` (streamed)
- ``pandas-calamine``, ``pandas-openpyxl``, ``pandas-odf``: ``pd.read_excel(engine=..., dtype=str)``
  (pandas has no chunked read_excel: the whole sheet becomes one DataFrame)

Inputs, made once into benchmarks/data/ (git-ignored) from the CSV files of common.data_file:
``rows-N.xlsx`` written by openpyxl (write-only mode: inline strings), and, when LibreOffice is installed
(``apt-get install -y libreoffice-calc-nogui``), ``rows-N.ods`` and ``rows-N-lo.xlsx`` converted by
``soffice --headless`` (LibreOffice's .xlsx keeps text in a shared-strings table, as Excel's does).

    python benchmarks/workbooks.py                                   # 100,000 rows, every reader
    python benchmarks/workbooks.py --sizes 1000000 --readers bulkstatus calamine openpyxl --run
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import DATA, data_file, scratch, tool_command, tool_environment

READERS = ("bulkstatus", "calamine", "openpyxl", "pandas-calamine", "pandas-openpyxl", "pandas-odf")
CHILD = r"""
import sys
reader, path = sys.argv[1], sys.argv[2]
rows = 0
if reader == "bulkstatus":
    from pathlib import Path
    from bulkstatus.input.sheets import sheet_kind, sheet_rows
    p = Path(path)
    with open(p, "rb") as f:
        kind = sheet_kind(p, f.read(4096))
        for _ in sheet_rows(p, kind, f, None):
            rows += 1
elif reader == "calamine":
    import python_calamine
    for _ in python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows():
        rows += 1
elif reader == "openpyxl":
    import openpyxl
    for _ in openpyxl.load_workbook(path, read_only=True, data_only=True).worksheets[0].iter_rows(values_only=True):
        rows += 1
else:
    import pandas as pd
    rows = len(pd.read_excel(path, engine=reader.split("-", 1)[1], dtype=str, header=None))
print(rows)
"""


def make_xlsx(rows: int) -> Path:
    path = DATA / f"rows-{rows}.xlsx"
    if path.exists():
        return path
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("customers")
    with data_file(rows).open(newline="", encoding="utf-8") as fh:
        for record in csv.reader(fh):
            sheet.append(record)
    tmp = path.with_suffix(".tmp.xlsx")
    book.save(tmp)
    tmp.replace(path)
    return path


def converted(source: Path, target: Path, to: str) -> Path | None:
    """``source`` converted to ``to`` by LibreOffice headless, as ``target``; None without LibreOffice."""
    if target.exists():
        return target
    soffice = shutil.which("soffice")
    if soffice is None:
        return None
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([soffice, "--headless", "--convert-to", to, "--outdir", out, str(source)], check=True,
                       capture_output=True, timeout=3600)
        made = next(Path(out).iterdir())
        shutil.move(made, target)
    return target


def measure(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout's last line or why it failed) of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # wait4, not wait: it gives the child's peak RSS
        timer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        problem = err.read().decode(errors="replace").strip().splitlines()
    peak = usage.ru_maxrss / 1024
    if proc.returncode not in (0, 1):
        why = f"stopped after {timeout:.0f} s" if seconds >= timeout else "failed: " + (problem or ["?"])[-1][:120]
        return seconds, peak, why
    return seconds, peak, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--readers", nargs="+", choices=READERS, default=list(READERS))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a reader is stopped")
    parser.add_argument("--run", action="store_true", help="also `bulkstatus run --dry-run` of each file")
    args = parser.parse_args()
    print(f"workbooks: python {sys.version.split()[0]}", flush=True)
    for size in args.sizes:
        xlsx = make_xlsx(size)
        files = {"xlsx (openpyxl)": xlsx,
                 "ods (LibreOffice)": converted(xlsx, DATA / f"rows-{size}.ods", "ods")}
        ods = files["ods (LibreOffice)"]
        files["xlsx (LibreOffice)"] = converted(ods, DATA / f"rows-{size}-lo.xlsx", "xlsx") if ods else None
        for what, path in files.items():
            if path is None:
                print(f"  {size:>9,} rows, {what}: skipped (no soffice)", flush=True)
                continue
            mb = path.stat().st_size / 1e6
            for reader in args.readers:
                if (reader == "pandas-odf") != path.name.endswith(".ods") and reader.startswith("pandas-o"):
                    continue  # openpyxl reads no .ods, odf no .xlsx
                if reader == "openpyxl" and path.name.endswith(".ods"):
                    continue
                seconds, peak, out = measure([sys.executable, "-c", CHILD, reader, str(path)], args.timeout)
                print(f"  {size:>9,} rows, {what} ({mb:.1f} MB): {reader:16} {seconds:7.1f} s  peak {peak:7.1f} MB"
                      f"  {out}", flush=True)
            if args.run:
                dry_run(path, f"{size:>9,} rows, {what}", args.timeout)
        if args.run:
            dry_run(data_file(size), f"{size:>9,} rows, the same as CSV", args.timeout)


def dry_run(path: Path, what: str, timeout: float) -> None:
    """``bulkstatus run --dry-run`` of ``path`` (no report.html: it is written after the rows, with matplotlib)."""
    with scratch() as out_dir:
        seconds, peak, out = measure(tool_command(path, out_dir, "--dry-run", "--rate", "0", "--no-report"),
                                     timeout * 2, env=tool_environment("http://127.0.0.1:9"))
    print(f"  {what}: bulkstatus run --dry-run {seconds:7.1f} s  peak {peak:7.1f} MB  {out}", flush=True)


if __name__ == "__main__":
    main()
