"""Hypothesis fuzz of the importer: malformed rows never crash it and are never half-imported."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.records import ImportFormatError, OntRecord, check_rows, parse_import

FIELDS = [
    "id",
    "id_pelanggan",
    "customer_id",
    "name",
    "lokasi",
    "location",
    "ip",
    "latitude",
    "longitude",
    "lat",
    "lon",
    "area",
    "status",
    "rto_count",
    "last_on",
    "Icon",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.sampled_from(
        [
            "ON",
            "OFF",
            "OFF(RTO)",
            "on ",
            "UNKNOWN",
            "",
            " 127.0.0.1 ",
            "-7,79",
            "2025-09-19T02:08:54",
            "x" * 600,
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
rows = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)),
    values,
)


@given(st.lists(rows, max_size=30))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_rows_never_crashes_and_never_half_imports(raw: list[Any]) -> None:
    """Every row is reported once; imported rows equal their validated input; refusals name a field."""
    plan = check_rows(raw)
    assert [r.row for r in plan.rows] == list(range(1, len(raw) + 1))
    imported = [r for r in plan.rows if r.result == "imported"]
    assert len(imported) == len(plan.records)
    for report, record in zip(imported, plan.records, strict=True):
        source = raw[report.row - 1]
        expected = OntRecord.model_validate(source)  # the validated input
        assert record == expected and report.id == record.id
        ont = record.to_ont()
        for name in ("id", "name", "customer_id", "location", "lat", "lon"):
            assert getattr(ont, name) == getattr(expected, name)
        assert ont.ip == expected.ip.strip()
    for report in plan.refused:
        assert report.errors and all(e["field"] and e["message"] for e in report.errors)
    ids = [r.id for r in plan.records]
    assert len(ids) == len(set(ids))


@given(
    st.one_of(
        st.binary(max_size=300), st.text(max_size=300), st.lists(rows, max_size=10).map(json.dumps)
    )
)
@settings(max_examples=400, deadline=None)
def test_parse_import_refuses_whole_files_only_with_import_format_error(data: bytes | str) -> None:
    """Any bytes: a plan, ImportFormatError (whole-file problem), or UnicodeDecodeError (not UTF-8)."""
    for ctype in ("", "application/json", "text/csv"):
        try:
            plan = parse_import(data, ctype)
        except ImportFormatError as exc:
            assert str(exc)
            continue
        except UnicodeDecodeError:
            assert isinstance(data, bytes)
            continue
        assert len(plan.records) + len(plan.refused) == len(plan.rows)
