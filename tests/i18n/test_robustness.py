"""Whatever a stored row holds (old versions, hand edits), rendering gives text, never an error."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from i18n.durations import format_duration
from i18n.notices import render as render_notice
from i18n.reasons import render as render_reason
from monitor.model import EventKind, ReasonCode

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
CODES = st.sampled_from([c.value for c in ReasonCode] + ["nope"])
REASONS = JSON | st.fixed_dictionaries(
    {
        "code": CODES,
        "params": st.dictionaries(
            st.sampled_from(
                [
                    "rto",
                    "open_s",
                    "cause",
                    "area",
                    "severity",
                    "status",
                    "parts",
                    "ip",
                    "seconds",
                    "x",
                ]
            ),
            JSON,
            max_size=4,
        ),
    }
)
PAYLOAD_KEYS = ["reason", "ont_id", "area", "status", "rto_count", "duration_s", "members", "ont"]
PAYLOADS = st.dictionaries(st.sampled_from(PAYLOAD_KEYS), JSON | REASONS, max_size=8)


@settings(max_examples=300, deadline=None)
@given(reason=REASONS, lang=st.sampled_from(["id", "en"]))
def test_any_stored_reason_renders(reason: Any, lang: str) -> None:
    assert isinstance(render_reason(reason, lang), str)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([k.value for k in EventKind] + ["other_kind"]),
    severity=st.sampled_from(["ok", "warning", "critical", "?"]),
    payload=PAYLOADS,
    lang=st.sampled_from(["id", "en"]),
)
def test_any_stored_payload_renders(
    kind: str, severity: str, payload: dict[str, Any], lang: str
) -> None:
    assert isinstance(render_notice(kind, severity, payload, lang), str)  # type: ignore[arg-type]


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**12), 10**12))
def test_any_number_of_seconds_formats(value: float) -> None:
    text = format_duration(value, "id")
    assert text.split()[0].isdigit()
