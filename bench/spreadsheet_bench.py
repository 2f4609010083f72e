"""Import parsing of spreadsheet-shaped files: seconds to parse and check N rows (no database).

    .venv/bin/python bench/spreadsheet_bench.py [--rows 10000]

Prints one line per format: an Indonesian-Excel CSV (`;`, decimal commas, BOM, CRLF, DMS
coordinates on a tenth of the rows) and an .xlsx workbook built with openpyxl.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openpyxl import Workbook

from api.records import parse_import
from api.spreadsheet import XLSX_TYPE

HEADER = ["No", "ID", "Nama", "Lokasi", "Kelurahan", "Latitude", "Longitude", "IP", "Status"]


def rows(n: int) -> list[list[str]]:
    out = []
    for i in range(1, n + 1):
        lat = "7°47'58.3\"S" if i % 10 == 0 else f"-7,{780000 + i % 9999}"
        out.append([str(i), str(i), f"Bumijo RT {i % 50}", "Pos Ronda", f"Area{i % 40}", lat,
                    f"110,{360000 + i % 9999}", f"127.1.{i // 250}.{i % 250 + 1}", "ON"])  # fmt: skip
    return out


def csv_bytes(n: int) -> bytes:
    lines = [";".join(HEADER)] + [";".join(r) for r in rows(n)]
    return b"\xef\xbb\xbf" + "".join(line + "\r\n" for line in lines).encode()


def xlsx_bytes(n: int) -> bytes:
    book = Workbook()
    book.active.append(HEADER)
    for r in rows(n):
        book.active.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def timed(data: bytes, ctype: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plan = parse_import(data, ctype)
        times.append(time.perf_counter() - start)
        assert not plan.refused and len(plan.records) > 0
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for name, data, ctype in (
        ("csv", csv_bytes(args.rows), "text/csv"),
        ("xlsx", xlsx_bytes(args.rows), XLSX_TYPE),
    ):
        seconds = timed(data, ctype, args.runs)
        print(
            f"parse+check {name}: rows={args.rows} bytes={len(data)} "
            f"median_s={seconds:.2f} rows_per_s={args.rows / seconds:,.0f}"
        )


if __name__ == "__main__":
    main()
