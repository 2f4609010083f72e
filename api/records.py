"""Inventory records: the request models, the older system's onts.json/CSV import, and export."""

from __future__ import annotations

import csv
import io
import json
import re
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
    field_validator,
)

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
    def _coordinate(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            value = value.strip().replace(",", ".")
        try:
            number = float(value)
        except (TypeError, ValueError):  # a list or an object: pydantic reports only ValueError
            raise ValueError("must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return number

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

    @field_validator("last_on", mode="before")
    @classmethod
    def _last_on(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def to_ont(self) -> Ont:
        """The inventory part; the area defaults to the name's first word (the kelurahan)."""
        area = self.area or (self.name.split()[0] if self.name.split() else "")
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

    def baseline(self, tz: tzinfo, now: datetime) -> Observation | None:
        """The status the record carries, as a silent baseline observation."""
        if self.status is None or self.status is Status.UNKNOWN:
            return None
        at = now
        if self.last_on is not None:
            # The older system wrote naive local times.
            last_on = self.last_on if self.last_on.tzinfo else self.last_on.replace(tzinfo=tz)
            at = min(last_on, now)
        return Observation.push(self.id, self.status, self.rto_count, at, source=Source.IMPORT)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Validation errors as [{"field": ..., "message": ...}], the field named as posted."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        out.append({"field": loc, "message": message})
    return out


@dataclass(slots=True)
class RowReport:
    """What happened to one row of an import."""

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
    """The good rows to write and the report of every row."""

    records: list[OntRecord]
    rows: list[RowReport]

    @property
    def refused(self) -> list[RowReport]:
        """Rows that will not be imported."""
        return [r for r in self.rows if r.result == "refused"]


class ImportFormatError(ValueError):
    """The file as a whole is not an ONT list (not JSON, not CSV, wrong shape)."""


def parse_import(data: bytes | str, content_type: str = "") -> ImportPlan:
    """Parse an onts.json list or a CSV file and check every row; bad rows do not stop good ones."""
    text = data.decode("utf-8-sig", errors="strict") if isinstance(data, bytes) else data
    stripped = text.lstrip()
    if "json" in content_type or stripped.startswith(("[", "{")):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"malformed JSON: {exc.msg} at line {exc.lineno}") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("onts"), list):
            loaded = loaded["onts"]
        if not isinstance(loaded, list):
            raise ImportFormatError("expected a JSON list of ONT objects")
        rows: Sequence[Any] = loaded
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            if not reader.fieldnames or "id" not in [f.strip().lower() for f in reader.fieldnames]:
                raise ImportFormatError("CSV needs a header row with at least an 'id' column")
            rows = [{(k or "").strip().lower(): v for k, v in r.items()} for r in reader]
        except csv.Error as exc:
            raise ImportFormatError(f"malformed CSV: {exc}") from None
    return check_rows(rows)


def check_rows(rows: Sequence[Any]) -> ImportPlan:
    """Validate rows; refuse duplicates of an id; warn on duplicate and invalid IPs."""
    records: list[OntRecord] = []
    reports: list[RowReport] = []
    seen_ids: dict[str, int] = {}
    seen_ips: dict[str, int] = {}
    for number, raw in enumerate(rows, start=1):
        raw_id = raw.get("id") if isinstance(raw, Mapping) else None
        report = RowReport(row=number, id=str(raw_id).strip() if raw_id is not None else None)
        reports.append(report)
        if not isinstance(raw, Mapping):
            report.result = "refused"
            report.errors.append({"field": "row", "message": "must be an object"})
            continue
        try:
            record = OntRecord.model_validate(raw)
        except ValidationError as exc:
            report.result = "refused"
            report.errors.extend(field_errors(exc))
            continue
        report.id = record.id
        if record.id in seen_ids:
            report.result = "refused"
            report.errors.append(
                {"field": "id", "message": f"duplicate id, first seen in row {seen_ids[record.id]}"}
            )
            continue
        seen_ids[record.id] = number
        ont = record.to_ont()
        if not ont.ip_valid:
            report.warnings.append(f"invalid IP address {record.ip!r}: it will not be probed")
        elif ont.ip in seen_ips:
            report.warnings.append(f"IP {ont.ip} is also used by row {seen_ips[ont.ip]}")
        else:
            seen_ips[ont.ip] = number
        if ont.lat is None or ont.lon is None:
            report.warnings.append("no coordinates: not shown on maps")
        records.append(record)
    return ImportPlan(records=records, rows=reports)


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
]


def export_record(ont: Ont, state: OntState, tz: tzinfo) -> dict[str, Any]:
    """One ONT in the older system's onts.json shape (plus area), readable by the importer."""
    last_on = (
        state.last_on.astimezone(tz).replace(tzinfo=None).isoformat() if state.last_on else None
    )
    return {
        "id": int(ont.id) if ont.id.isdigit() and not ont.id.startswith("0") else ont.id,
        "id_pelanggan": ont.customer_id,
        "name": ont.name,
        "lokasi": ont.location,
        "ip": ont.ip,
        "latitude": ont.lat,
        "longitude": ont.lon,
        "area": ont.area,
        "status": state.status.value,
        "rto_count": state.rto_count,
        "last_on": last_on,
    }


def export_text(records: Sequence[dict[str, Any]], fmt: Literal["json", "csv"]) -> str:
    """Exported records as JSON or CSV text."""
    if fmt == "json":
        return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for rec in records:
        writer.writerow({k: "" if rec[k] is None else rec[k] for k in EXPORT_FIELDS})
    return out.getvalue()
