"""Tables as spreadsheets save them: CSV with a sniffed delimiter, BOM, CRLF; .xlsx workbooks.

Excel and LibreOffice in an Indonesian locale save CSV with `;` between fields (the comma is
the decimal separator), often with a UTF-8 byte-order mark and CRLF line ends; Excel's plain
"CSV" (not "CSV UTF-8") is Windows-1252 text, and its "Unicode text" is tab-separated UTF-16.
All of these are read here. `.xlsx` files are read with openpyxl in read-only mode.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from api.columns import field_for

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DELIMITERS = (",", ";", "\t", "|")
EXTRA = "\0extra"  # row key of the cells right of the last header (reported, not used)
MAX_ROWS = 100_000  # rows read from one file (the API refuses more than MAX_IMPORT_ROWS anyway)
MAX_COLUMNS = 200  # cells read from one row: a sheet formatted out to column XFD costs nothing
HEADER_SEARCH_ROWS = 20  # a title or notes above the header row are skipped, this far down
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}


class TableError(ValueError):
    """The file is not a table that can be read (the message says why)."""


@dataclass(slots=True)
class Table:
    """A header row and the rows under it, each row numbered as the spreadsheet shows it."""

    headers: list[str]
    rows: list[tuple[int, dict[str, Any]]]  # (line or row number in the file, header -> value)
    notes: list[str] = field(default_factory=list)


def is_xlsx(data: bytes, content_type: str = "") -> bool:
    """An Office Open XML workbook, by declared type or by its zip signature."""
    return XLSX_TYPE in content_type or data[:4] == b"PK\x03\x04"  # no text file starts so


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Text of a CSV file and a note when it was not UTF-8 (UTF-16 by BOM, else Windows-1252)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "read as UTF-16 (its byte-order mark)"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "not UTF-8: read as Windows-1252 (Excel's plain CSV)"
        except UnicodeDecodeError:
            raise TableError(
                "the file is neither UTF-8 nor Windows-1252 text; save it as CSV UTF-8"
            ) from None


def read_csv(text: str) -> Table:
    """A CSV table: the delimiter sniffed from the lines themselves, or Excel's `sep=` line."""
    lines = text.splitlines(keepends=True)
    notes: list[str] = []
    first = lines[0].strip() if lines else ""
    if first.lower().startswith("sep=") and len(first) == 5:
        delimiter, lines = first[4], lines[1:]
    else:
        delimiter = sniff_delimiter(lines[: HEADER_SEARCH_ROWS + 20])
    notes.append(f"CSV, {_NAMES.get(delimiter, repr(delimiter))}-separated")
    grid: list[list[Any]] = []
    try:
        for r in csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter):
            if len(grid) > MAX_ROWS:
                raise TableError(f"more than {MAX_ROWS} rows")
            grid.append(r[:MAX_COLUMNS])
    except csv.Error as exc:
        raise TableError(f"malformed CSV: {exc}") from None
    offset = len(text.splitlines()) - len(lines)  # a skipped sep= line still counts
    return _table(grid, notes, first_number=1 + offset)


def sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter that splits the header and the next lines into the most, equal, fields."""
    sample = "".join(lines)
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            rows = [
                r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r
            ]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        same = sum(1 for r in rows[1:] if len(r) == width)
        known = sum(1 for cell in rows[0] if field_for(cell))
        score = (known, same * 1000 + width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_xlsx(data: bytes, sheet: str | None = None) -> Table:
    """The first sheet of a workbook (or the named one), read-only, cached values of formulas."""
    from openpyxl import load_workbook  # loaded only for workbooks

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TableError(f"not a readable .xlsx workbook: {exc}") from None
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise TableError(f"no sheet {sheet!r}; the workbook has: {', '.join(names)}")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        grid = []
        for row in ws.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            if len(grid) > MAX_ROWS:
                raise TableError(f"more than {MAX_ROWS} rows in sheet {ws.title!r}")
            grid.append([_cell(v) for v in row])
        title = ws.title
    finally:
        book.close()
    notes = [f"xlsx, sheet {title!r}" + (f" (of {len(names)})" if len(names) > 1 else "")]
    return _table(grid, notes, first_number=1)


def _cell(value: Any) -> Any:
    """A cell's value for the importer: whole floats as integers (ids), times as ISO text."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _table(grid: list[list[Any]], notes: list[str], first_number: int) -> Table:
    """Find the header row (the first with an id column), name the cells of the rows under it."""
    start = _header_index(grid)
    headers = [str(h).strip() if h is not None else "" for h in grid[start]]
    headers = _unique(headers)
    if start:
        notes.append(f"header found in row {start + first_number}; the rows above it are skipped")
    rows: list[tuple[int, dict[str, Any]]] = []
    blank = 0
    for index, cells in enumerate(grid[start + 1 :], start=start + 1):
        if all(_blank(c) for c in cells):
            blank += 1
            continue
        number = index + first_number
        row = {h: (cells[i] if i < len(cells) else None) for i, h in enumerate(headers) if h}
        extra = [c for c in cells[len(headers) :] if not _blank(c)]
        if extra:
            row[EXTRA] = extra
        rows.append((number, row))
    if blank:
        notes.append(f"{blank} empty row{'s' if blank != 1 else ''} skipped")
    return Table([h for h in headers if h], rows, notes)


def _header_index(grid: list[list[Any]]) -> int:
    for index, cells in enumerate(grid[:HEADER_SEARCH_ROWS]):
        if any(field_for(c) == "id" for c in cells if not _blank(c)):
            return index
    first = next((cells for cells in grid if not all(_blank(c) for c in cells)), None)
    if first is None:
        raise TableError("the file has no rows")
    shown = ", ".join(repr(str(c)) for c in first if not _blank(c))[:200]
    raise TableError(
        "no header row with an ONT id column (looked for 'id', 'ont id', 'id ont' in the first "
        f"{HEADER_SEARCH_ROWS} rows); the first row is: {shown}"
    )


def _unique(headers: list[str]) -> list[str]:
    """Two columns with one header stay two columns: the second is named `header (2)`."""
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        if h and h in seen:
            seen[h] += 1
            out.append(f"{h} ({seen[h]})")
        else:
            seen[h] = 1
            out.append(h)
    return out
