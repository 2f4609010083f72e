"""View parsing for GET /api/map.png and the bot's /map argument."""

from __future__ import annotations

import pytest

from maps.view import MapView, parse_command_arg, parse_query

AREAS = ["Baciro", "Terban", "Kota Baru"]
ONTS = ["1001", "1002", "ABC-7"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (MapView("all"), 800, 600)),
        ({"view": "all"}, (MapView("all"), 800, 600)),
        ({"view": "OFFLINE", "width": "400"}, (MapView("offline"), 400, 600)),
        ({"area": " Baciro ", "height": "2000"}, (MapView("area", "Baciro"), 800, 2000)),
        ({"ont": "1001", "width": "200", "height": "200"}, (MapView("ont", "1001"), 200, 200)),
        ({"view": "", "width": ""}, (MapView("all"), 800, 600)),
        ({"token": "x"}, (MapView("all"), 800, 600)),  # unrelated keys are not ours to judge
    ],
)
def test_parse_query_accepts(params: dict[str, str], expected: tuple[MapView, int, int]) -> None:
    assert parse_query(params) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"width": "199"}, "width"),
        ({"width": "2001"}, "width"),
        ({"width": "abc"}, "width"),
        ({"height": "1e3"}, "height"),
        ({"height": "-5"}, "height"),
        ({"view": "nearby"}, "view"),
        ({"area": "Baciro", "ont": "1001"}, "area, ont"),
        ({"view": "offline", "area": "Baciro"}, "view, area"),
        ({"area": "x" * 101}, "area"),
        ({"ont": "10\n01"}, "ont"),
    ],
)
def test_parse_query_names_the_bad_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        parse_query(params)


def test_width_message_states_the_range() -> None:
    with pytest.raises(ValueError, match=r"^width: must be 200\.\.2000$"):
        parse_query({"width": "5000"})


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("", MapView("all")),
        ("  ", MapView("all")),
        ("offline", MapView("offline")),
        ("Offline", MapView("offline")),
        ("mati", MapView("offline")),
        ("Baciro", MapView("area", "Baciro")),
        ("baciro", MapView("area", "Baciro")),
        ("kota  baru", MapView("area", "Kota Baru")),
        ("1001", MapView("ont", "1001")),
        ("abc-7", MapView("ont", "ABC-7")),
        ("area terban", MapView("area", "Terban")),
        ("ont 1002", MapView("ont", "1002")),
    ],
)
def test_parse_command_arg(arg: str, expected: MapView) -> None:
    assert parse_command_arg(arg, AREAS, ONTS) == expected


def test_ont_id_wins_over_an_area_of_the_same_name() -> None:
    assert parse_command_arg("7", ["7"], ["7"]) == MapView("ont", "7")
    assert parse_command_arg("area 7", ["7"], ["7"]) == MapView("area", "7")


@pytest.mark.parametrize(
    ("arg", "field"),
    [("Nowhere", "map"), ("area 1001", "area"), ("ont Baciro", "ont"), ("x" * 200, "map")],
)
def test_parse_command_arg_rejects_unknown(arg: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        parse_command_arg(arg, AREAS, ONTS)


def test_mapview_checks_its_fields() -> None:
    with pytest.raises(ValueError, match=r"^area: "):
        MapView("area")
    with pytest.raises(ValueError, match=r"^kind: "):
        MapView("nearby")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^value: "):
        MapView("all", "x")
