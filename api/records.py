"""Inventory records: the request models, the import of onts.json, CSV and .xlsx, and export.

parse_import() is a pure synchronous function of the file's bytes (the API may run it in a
thread). Tables are read by api/spreadsheet.py, their headers matched against the alias
table of api/columns.py, coordinates read by api/coordinates.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from api.columns import ColumnMap
from api.coordinates import parse_coordinate
from api.spreadsheet import EXTRA, Table, TableError, decode_text, is_xlsx, read_csv, read_xlsx
from monitor.areas import similar_areas
from monitor.model import Observation, Ont, OntState, Source, Status

MAX_ID_LEN = 64
MAX_TEXT_LEN = 500
_STATUS_RE = re.compile(r"^\s*(ON|OFF)\s*(\(.*\))?\s*$", re.IGNORECASE)


def parse_status(value: Any) -> Status:
    """ON/OFF, case-insensitive; the older system's 'OFF(RTO)' forms count as OFF."""
    if isinstance(value, Status) and value is not Status.UNKNOWN:
        return value
    match = _STATUS_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"must be 'ON' or 'OFF', got {value!r}")
    return Status(match.group(1).upper())


class StatusPush(BaseModel):
    """Body of POST /api/ont-status/{id}: {"status": "ON"|"OFF", "rto_count": n}."""

    model_config = ConfigDict(extra="ignore")

    status: Status = Field(description="ON or OFF (the older 'OFF(RTO)' forms are read as OFF)")
    rto_count: int | None = Field(None, ge=0, le=1_000_000)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Status:
        return parse_status(value)

    @field_validator("rto_count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true is not a count of 1
            raise ValueError("must be an integer, not true/false")
        return value


class BulkStatusPush(StatusPush):
    """One item of POST /api/ont-status: a push naming its ONT."""

    id: str = Field(min_length=1, max_length=MAX_ID_LEN)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return _id_text(value)


def _id_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else value


class AreaRename(BaseModel):
    """Body of POST /api/areas/rename: {"old": AREA, "new": AREA} merges old into new."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    old: str = Field(min_length=1, max_length=MAX_TEXT_LEN)
    new: str = Field(min_length=1, max_length=MAX_TEXT_LEN)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class OntRecord(BaseModel):
    """An ONT as posted or imported; the older system's field names are accepted too."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=MAX_ID_LEN)
    name: str = Field("", max_length=MAX_TEXT_LEN)
    customer_id: str = Field(
        "", max_length=MAX_TEXT_LEN, validation_alias=_alias("customer_id", "id_pelanggan")
    )
    location: str = Field(
        "", max_length=MAX_TEXT_LEN, validation_alias=_alias("location", "lokasi")
    )
    lat: float | None = Field(None, ge=-90, le=90, validation_alias=_alias("lat", "latitude"))
    lon: float | None = Field(None, ge=-180, le=180, validation_alias=_alias("lon", "longitude"))
    ip: str = Field("", max_length=100)
    area: str = Field("", max_length=MAX_TEXT_LEN)
    status: Status | None = None
    rto_count: int | None = Field(None, ge=0, le=1_000_000)
    last_on: datetime | None = None
    status_since: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator("name", "customer_id", "location", "ip", "area", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None:
            return ""
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("lat", "lon", mode="before")
    @classmethod
    def _coordinate(cls, value: Any, info: ValidationInfo) -> Any:
        try:
            return parse_coordinate(value, "lat" if info.field_name == "lat" else "lon")
        except (TypeError, ValueError) as exc:  # pydantic reports only ValueError
            raise ValueError(str(exc)) from None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Status | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and value.strip().upper() == "UNKNOWN":
            return Status.UNKNOWN
        return parse_status(value)

    @field_validator("rto_count", mode="before")
    @classmethod
    def _rto(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("last_on", "status_since", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("last_on", "status_since")
    @classmethod
    def _plausible_time(cls, value: datetime | None) -> datetime | None:
        if value is not None and not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
            raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
        return value

    def to_ont(self) -> Ont:
        """The inventory part; with no area given, the area is the name's first word (kelurahan).

        An area given empty (an empty cell of an area column) stays empty.
        """
        derive = "area" not in self.model_fields_set and self.name.split()
        area = self.name.split()[0] if derive else self.area
        return Ont(
            id=self.id,
            name=self.name,
            customer_id=self.customer_id,
            location=self.location,
            lat=self.lat,
            lon=self.lon,
            ip=self.ip.strip(),
            area=area,
        )

    def baselines(self, tz: tzinfo, now: datetime) -> list[Observation]:
        """The status the record carries as silent baseline observations (none when unknown).

        OFF with a `last_on` is first ON at `last_on`, then OFF since `status_since` (or since
        `last_on`, as the older system's exports have it): an export and a re-import give
        back the status, the down-since and the last-on.
        """
        if self.status is None or self.status is Status.UNKNOWN:
            return []
        last_on = _local(self.last_on, tz, now)
        since = _local(self.status_since, tz, now) or last_on or now
        out = []
        if self.status is Status.OFF and last_on is not None:
            on_at = min(last_on, since)
            out.append(Observation.push(self.id, Status.ON, 0, on_at, source=Source.IMPORT))
        out.append(Observation.push(self.id, self.status, self.rto_count, since, Source.IMPORT))
        return out


EARLIEST = datetime(1970, 1, 2)
LATEST = datetime(2100, 1, 1)


def _local(value: datetime | None, tz: tzinfo, now: datetime) -> datetime | None:
    """A time from a file: naive ones are local (the older system wrote so); never the future."""
    if value is None:
        return None
    return min(value if value.tzinfo else value.replace(tzinfo=tz), now)


def field_errors(exc: ValidationError, columns: ColumnMap | None = None) -> list[dict[str, str]]:
    """Validation errors as [{"field": ..., "message": ...}], the field named as posted."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        if columns is not None and len(err["loc"]) == 1:
            loc = columns.header(loc)
        message = err["msg"].removeprefix("Value error, ")
        out.append({"field": loc, "message": message})
    return out


@dataclass(slots=True)
class RowReport:
    """What happened to one row of an import (numbered as the file shows it)."""

    row: int
    id: str | None
    result: Literal["imported", "refused"] = "imported"
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {
            "row": self.row,
            "id": self.id,
            "result": self.result,
            "errors": self.errors,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class ImportPlan:
    """The good rows to write, the report of every row, and what was learnt of the file."""

    records: list[OntRecord]
    rows: list[RowReport]
    source: str = ""  # "JSON", "CSV, semicolon-separated", "xlsx, sheet 'ONT'"
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # field -> header in the file
    unused: dict[str, str] = field(default_factory=dict)  # header -> why it is not used

    @property
    def refused(self) -> list[RowReport]:
        """Rows that will not be imported."""
        return [r for r in self.rows if r.result == "refused"]

    def area_counts(self) -> dict[str, int]:
        """ONTs per area among the rows to import, most first."""
        counts: dict[str, int] = {}
        for record in self.records:
            area = record.to_ont().area
            counts[area] = counts.get(area, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def report(self, created: Sequence[bool], *, dry_run: bool = False) -> dict[str, Any]:
        """The import's report (the API's answer); created[i] says whether record i is new."""
        areas = self.area_counts()
        return {
            "dry_run": dry_run,
            "imported": len(self.records),
            "created": sum(created),
            "updated": len(created) - sum(created),
            "refused": len(self.refused),
            "format": self.source,
            "notes": self.notes,
            "columns": self.columns,
            "unused_columns": [{"column": c, "reason": r} for c, r in self.unused.items()],
            "areas": [{"area": a, "count": n} for a, n in areas.items()],
            "similar_areas": [
                {"names": list(g.names), "counts": list(g.counts), "why": g.why, "keep": g.keep}
                for g in similar_areas(areas)
            ],
            "rows": [r.as_json() for r in self.rows],
        }


def report_lines(report: Mapping[str, Any], name: str) -> list[str]:
    """An import report as the CLI prints it (and the README shows it)."""
    verb = "would be imported" if report.get("dry_run") else "imported"
    lines = [
        f"{name}: {report['imported']} {verb} ({report['created']} new, "
        f"{report['updated']} updated), {report['refused']} refused"
    ]
    if report.get("format"):
        lines.append(f"  file: {report['format']}")
    lines.extend(f"  note: {n}" for n in report.get("notes", []))
    if report.get("columns"):
        used = ", ".join(f"{h} → {f}" for f, h in report["columns"].items())
        lines.extend(_wrapped(f"  columns: {used}"))
    for col in report.get("unused_columns", []):
        lines.append(f"  column {col['column']!r} not used: {col['reason']}")
    areas = report.get("areas", [])
    if areas:
        shown = ", ".join(f"{a['area'] or '(none)'} {a['count']}" for a in areas)
        lines.extend(_wrapped(f"  areas ({len(areas)}): {shown}"))
    for g in report.get("similar_areas", []):
        shown = ", ".join(f"{n} ({c})" for n, c in zip(g["names"], g["counts"], strict=True))
        lines.append(f"  areas that look like one: {shown}: {g['why']}")
    if report.get("similar_areas"):
        lines.append("  merge with: ontwatch areas rename OLD NEW")
    for row in report.get("rows", []):
        for err in row["errors"]:
            lines.append(
                f"  row {row['row']} (id {row['id']}): refused: {err['field']}: {err['message']}"
            )
        for warning in row["warnings"]:
            lines.append(f"  row {row['row']} (id {row['id']}): warning: {warning}")
    return lines


def _wrapped(line: str) -> list[str]:
    return textwrap.wrap(line, 96, subsequent_indent="      ", break_on_hyphens=False)


class ImportFormatError(ValueError):
    """The file as a whole is not an ONT list (not JSON, not a table, wrong shape)."""


def parse_import(data: bytes | str, content_type: str = "", sheet: str | None = None) -> ImportPlan:
    """Parse an onts.json list, a CSV file or an .xlsx workbook and check every row.

    Bad rows do not stop good ones. ImportFormatError when the file as a whole cannot be
    read; UnicodeDecodeError when a JSON file is not UTF-8.
    """
    try:
        if isinstance(data, bytes) and is_xlsx(data, content_type):
            return check_table(read_xlsx(data, sheet))
        notes: list[str] = []
        if isinstance(data, bytes):
            text, note = (data.decode("utf-8-sig"), None) if _json_like(data) else decode_text(data)
            notes.extend([note] if note else [])
        else:
            text = data
        if "json" in content_type or text.lstrip().startswith(("[", "{")):
            return _parse_json(text)
        table = read_csv(text)
        table.notes[1:1] = notes
        return check_table(table, unquote=True)
    except TableError as exc:
        raise ImportFormatError(str(exc)) from None


def _json_like(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{")


def _parse_json(text: str) -> ImportPlan:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"malformed JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("onts"), list):
        loaded = loaded["onts"]
    if not isinstance(loaded, list):
        raise ImportFormatError("expected a JSON list of ONT objects")
    plan = check_rows(loaded)
    plan.source = "JSON"
    return plan


def check_table(table: Table, *, unquote: bool = False) -> ImportPlan:
    """Check the rows of a spreadsheet; the report names the file's own headers and rows."""
    columns = ColumnMap.of(table.headers)
    rows = [{k: _unquote(v) for k, v in r.items()} if unquote else r for _, r in table.rows]
    plan = check_rows(rows, numbers=[n for n, _ in table.rows], columns=columns)
    plan.source, plan.notes = table.notes[0], table.notes[1:] + plan.notes
    return plan


def check_rows(
    rows: Sequence[Any],
    numbers: Sequence[int] | None = None,
    columns: ColumnMap | None = None,
) -> ImportPlan:
    """Validate rows; refuse duplicates of an id; warn on duplicate and invalid IPs, no name.

    Keys are matched against the alias table (api/columns.py): one ColumnMap for a table,
    each object's own keys for JSON.
    """
    plan = ImportPlan(records=[], rows=[])
    seen_ids: dict[str, int] = {}
    seen_ips: dict[str, int] = {}
    maps: dict[tuple[Any, ...], ColumnMap] = {}
    for index, raw in enumerate(rows):
        number = numbers[index] if numbers is not None else index + 1
        cmap = columns
        if cmap is None and isinstance(raw, Mapping):
            keys = tuple(k for k in raw if k != EXTRA)
            cmap = maps.get(keys) or maps.setdefault(keys, ColumnMap.of(keys))
        if cmap is not None:
            _learn_columns(plan, cmap)
        report, record = _check_row(raw, number, cmap)
        plan.rows.append(report)
        if record is None:
            continue
        if record.id in seen_ids:
            report.result = "refused"
            first = seen_ids[record.id]
            report.errors.append(
                {
                    "field": _header(cmap, "id"),
                    "message": f"duplicate id, first seen in row {first}",
                }
            )
            continue
        seen_ids[record.id] = number
        _warn(report, record.to_ont(), seen_ips, number)
        plan.records.append(record)
    if plan.records and "area" not in plan.columns and "name" in plan.columns:
        plan.notes.append("no area column: each area is the first word of the name")
    return plan


def _learn_columns(plan: ImportPlan, cmap: ColumnMap) -> None:
    for name, header in cmap.fields.items():
        plan.columns.setdefault(name, header)
    for header, why in cmap.unused.items():
        plan.unused.setdefault(header, why)


def _header(cmap: ColumnMap | None, name: str) -> str:
    return cmap.header(name) if cmap is not None else name


def _check_row(raw: Any, number: int, cmap: ColumnMap | None) -> tuple[RowReport, OntRecord | None]:
    """One row validated; the report names the file's own column in each error."""
    if not isinstance(raw, Mapping) or cmap is None:
        report = RowReport(row=number, id=None, result="refused")
        report.errors.append({"field": "row", "message": "must be an object"})
        return report, None
    values = cmap.row(raw)
    raw_id = values.get("id")
    report = RowReport(row=number, id=str(raw_id).strip() if raw_id is not None else None)
    if raw.get(EXTRA):
        report.warnings.append(f"{len(raw[EXTRA])} cells right of the last column ignored")
    try:
        record = OntRecord.model_validate(values)
    except ValidationError as exc:
        report.result = "refused"
        report.errors.extend(field_errors(exc, cmap))
        return report, None
    report.id = record.id
    if not record.name:
        report.warnings.append("no name: shown by its id")
    return report, record


def _warn(report: RowReport, ont: Ont, seen_ips: dict[str, int], number: int) -> None:
    if not ont.ip_valid:
        report.warnings.append(f"invalid IP address {ont.ip!r}: it will not be probed")
    elif ont.ip in seen_ips:
        report.warnings.append(f"IP {ont.ip} is also used by row {seen_ips[ont.ip]}")
    else:
        seen_ips[ont.ip] = number
    if ont.lat is None or ont.lon is None:
        report.warnings.append("no coordinates: not shown on maps")


# -- export ------------------------------------------------------------------------------

EXPORT_FIELDS = [
    "id",
    "id_pelanggan",
    "name",
    "lokasi",
    "ip",
    "latitude",
    "longitude",
    "area",
    "status",
    "rto_count",
    "last_on",
    "status_since",
]
# OWASP's CSV injection rule: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_START = (*FORMULA_START, "'")


def export_record(ont: Ont, state: OntState, tz: tzinfo) -> dict[str, Any]:
    """One ONT in the older system's onts.json shape (plus area and status_since)."""
    return {
        "id": int(ont.id) if _plain_number(ont.id) else ont.id,
        "id_pelanggan": ont.customer_id,
        "name": ont.name,
        "lokasi": ont.location,
        "ip": ont.ip,
        "latitude": ont.lat,
        "longitude": ont.lon,
        "area": ont.area,
        "status": state.status.value,
        "rto_count": state.rto_count,
        "last_on": _local_text(state.last_on, tz),
        "status_since": _local_text(state.status_since, tz),
    }


def _plain_number(ont_id: str) -> bool:
    """An id the older system wrote as a JSON number: ASCII digits, no leading zero."""
    return ont_id.isascii() and ont_id.isdigit() and not ont_id.startswith("0")


def _local_text(at: datetime | None, tz: tzinfo) -> str | None:
    """A time as the importer reads it back exactly: local, with its UTC offset."""
    return at.astimezone(tz).isoformat() if at is not None else None


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will not run: OWASP's leading quote before a formula start.

    A cell that already starts with a quote gets one more, so _unquote() gives back every
    text exactly.
    """
    return "'" + cell if cell.startswith(_QUOTED_START) else cell


def _unquote(value: Any) -> Any:
    """The inverse of neutralise() for a CSV cell read back."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_QUOTED_START):
        return value[1:]
    return value


def export_text(records: Sequence[dict[str, Any]], fmt: Literal["json", "csv"]) -> str:
    """Exported records as JSON or CSV text (CSV text cells neutralised against formulas)."""
    if fmt == "json":
        return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: _csv_cell(rec.get(k)) for k in EXPORT_FIELDS})
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    return value
