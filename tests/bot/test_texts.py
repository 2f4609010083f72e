"""Texts: durations per language, escaping of values."""

from __future__ import annotations

from datetime import timedelta

from bot.replies import parse_duration
from bot.texts import Html, duration, t


def test_durations() -> None:
    assert duration(timedelta(hours=2, minutes=15), "id") == "2 jam 15 mnt"
    assert duration(timedelta(hours=2, minutes=15), "en") == "2 h 15 min"
    assert duration(timedelta(days=3, hours=4, minutes=5), "en") == "3 d 4 h"
    assert duration(timedelta(seconds=45), "id") == "45 dtk"  # seconds, never read as days
    assert duration(timedelta(0), "en") == "0 s"


def test_values_are_escaped_unless_html() -> None:
    assert "&lt;b&gt;" in t("en", "unknown_ont", id="<b>")
    assert "<i>x</i>" in t("en", "unknown_ont", id=Html("<i>x</i>"))


def test_mute_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("2jam") == timedelta(hours=2)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("0m", "31d", "soon", "1x", "-1h"):
        assert parse_duration(bad) is None
