"""Status, severity and event-kind names in both languages."""

from __future__ import annotations

import pytest

from i18n.words import kind_label, severity_label, status_label
from monitor.model import EventKind, Severity, Status
from tests.i18n.language import english_in


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_has_a_name_in_both_languages(kind: EventKind) -> None:
    id_text, en_text = kind_label(kind.value, "id"), kind_label(kind.value, "en")
    assert id_text and en_text and id_text != kind.value.replace("_", " ")
    assert english_in(id_text) == [], id_text


@pytest.mark.parametrize(
    ("value", "id_text", "en_text"),
    [("ON", "ON", "ON"), ("OFF", "OFF", "OFF"), ("UNKNOWN", "TIDAK DIKETAHUI", "UNKNOWN")],
)
def test_status_label(value: str, id_text: str, en_text: str) -> None:
    assert (status_label(value, "id"), status_label(value, "en")) == (id_text, en_text)


@pytest.mark.parametrize(
    ("value", "id_text", "en_text"),
    [("ok", "ok", "ok"), ("warning", "peringatan", "warning"), ("critical", "kritis", "critical")],
)
def test_severity_label(value: str, id_text: str, en_text: str) -> None:
    assert (severity_label(value, "id"), severity_label(value, "en")) == (id_text, en_text)


def test_every_status_and_severity_is_named() -> None:
    assert all(status_label(s.value, "en") for s in Status)
    assert {severity_label(s.value, "id") for s in Severity} == {"ok", "peringatan", "kritis"}


def test_unknown_values_are_shown_as_they_are() -> None:
    assert kind_label("new_kind_x", "id") == "new kind x"
    assert severity_label("weird", "en") == "weird"
