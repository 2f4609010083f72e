"""Durations read the same to everyone: seconds never look like days."""

from __future__ import annotations

from datetime import timedelta

import pytest

from i18n.durations import format_duration

CASES = [
    # value, Indonesian, English
    (timedelta(seconds=4), "4 dtk", "4 s"),
    (4.9, "4 dtk", "4 s"),  # cut, not rounded
    (0, "0 dtk", "0 s"),
    (-30, "0 dtk", "0 s"),  # a negative span (clock skew) is zero
    (timedelta(minutes=3), "3 mnt", "3 min"),
    (timedelta(minutes=3, seconds=7), "3 mnt 7 dtk", "3 min 7 s"),
    (timedelta(hours=2), "2 jam", "2 h"),
    (timedelta(hours=2, minutes=5), "2 jam 5 mnt", "2 h 5 min"),
    (timedelta(hours=2, minutes=5, seconds=9), "2 jam 5 mnt", "2 h 5 min"),  # two units at most
    (timedelta(hours=2, seconds=9), "2 jam", "2 h"),  # the next unit only
    (timedelta(days=1), "1 hari", "1 d"),
    (timedelta(days=1, hours=3), "1 hari 3 jam", "1 d 3 h"),
    (timedelta(days=40, minutes=59), "40 hari", "40 d"),
    (3600.0, "1 jam", "1 h"),
]


@pytest.mark.parametrize(("value", "id_text", "en_text"), CASES)
def test_format_duration(value: timedelta | float, id_text: str, en_text: str) -> None:
    assert format_duration(value, "id") == id_text
    assert format_duration(value, "en") == en_text
