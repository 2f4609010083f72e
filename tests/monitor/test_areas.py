"""Area names that look like one area written differently (monitor/areas.py), table-driven."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from monitor.areas import describe, edit_distance, similar_areas, suffix_base, why_similar
from tests.conftest import HOTSPOT


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("Bumijo", "bumijo", "case or spacing"),
        ("Pandeyan ", "pandeyan", "case or spacing"),
        ("Tegal Rejo", "Tegal_rejo", "case or spacing"),
        ("MujaMuju", "Mujamuju", "case or spacing"),
        ("Bumijo", "Bumijo-1", "numbered suffix"),
        ("Bumijo 2", "Bumijo", "numbered suffix"),
        ("Sorosutan", "Surosutan", "one letter apart"),
        ("Gedongkiwo", "Godongkiwo", "one letter apart"),
        ("Klitren", "Kiltren", "one letter apart"),  # two letters swapped
        ("Gunungketur", "Gungketur", "two letters apart"),
        # Not the same area:
        ("Bumijo-1", "Bumijo-2", None),  # numbered siblings, without their base: no guess
        ("ODP-01", "ODP-02", None),  # a numbered series
        ("OLT1 PON3", "OLT1 PON4", None),
        ("Baciro", "Bener", None),
        ("Muja", "Mujamuju", None),
        ("Bener", "Bener", None),
        ("Kricak", "Kricek", "one letter apart"),
        ("Terban", "Tegal", None),
        ("Muja", "Mija", None),  # too short for a guess (under five letters)
        ("Semaki", "Semak", "one letter apart"),
        ("Suryatmajan", "Suryodiningratan", None),
    ],
)
def test_why_similar(a: str, b: str, why: str | None) -> None:
    assert why_similar(a, b) == why
    assert why_similar(b, a) == why


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("Bumijo-1", "Bumijo"),
        ("Bumijo 12", "Bumijo"),
        ("Bumijo", None),
        ("ODP-7", "ODP"),
        ("7", None),
    ],
)
def test_suffix_base(name: str, base: str | None) -> None:
    assert suffix_base(name) == base


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("abc", "abc", 0), ("abc", "abd", 1), ("abc", "acb", 1), ("abc", "a", 2), ("abcdef", "a", 3)],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, limit=2) == distance


def test_groups_keep_the_spelling_with_the_most_onts() -> None:
    groups = similar_areas(
        {"Bumijo": 7, "Bumijo-1": 1, "Bumijo-2": 1, "Surosutan": 1, "Sorosutan": 10, "Baciro": 37}
    )
    assert [(g.keep, g.merge, g.why) for g in groups] == [
        ("Sorosutan", ("Surosutan",), "one letter apart"),
        ("Bumijo", ("Bumijo-1", "Bumijo-2"), "numbered suffix"),
    ]
    assert describe(groups[0]) == "Sorosutan (10), Surosutan (1): one letter apart"


def test_the_real_export_shows_its_split_kelurahan() -> None:
    rows = json.loads(HOTSPOT.read_text(encoding="utf-8"))
    counts = Counter(r["name"].split()[0] for r in rows)
    keep = {g.keep: set(g.merge) for g in similar_areas(counts)}
    assert keep["Bumijo"] == {"Bumijo-1", "Bumijo-2"}
    assert keep["Sorosutan"] == {"Surosutan"}
    assert keep["Gedongkiwo"] == {"Godongkiwo"}
    assert keep["Gunungketur"] == {"Gungketur"}
    assert "Baciro" not in keep and "Muja" not in keep
