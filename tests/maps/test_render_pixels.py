"""Golden checks on the rendered pixels: marker colours at their projected places, legend."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image, ImageChops
from staticmap.staticmap import _lat_to_y, _lon_to_x

from maps.overlay import LegendEntry, cluster_radius, draw_header, header_layout
from maps.render import RenderedMap
from maps.style import COLOURS, Category
from maps.view import MapView
from monitor.model import Ont, OntState, Status
from tests.fakes.tile_server import TileServer
from tests.maps.conftest import NOW, TZ, RendererFactory, state

RED, GREEN, ORANGE = COLOURS[Category.OFFLINE], COLOURS[Category.ONLINE], COLOURS[Category.WARNING]


def _image(result: RenderedMap) -> Image.Image:
    img = Image.open(BytesIO(result.png))
    assert img.format == "PNG"
    return img.convert("RGB")


def _expected_px(result: RenderedMap, lon: float, lat: float) -> tuple[int, int]:
    """Where staticmap's own projection puts lon/lat in this frame (independent of ours)."""
    f = result.plan.frame
    z = f.zoom
    clon, clat = f.center_lonlat
    x = (_lon_to_x(lon, z) - _lon_to_x(clon, z)) * 256 + f.width / 2
    y = (_lat_to_y(lat, z) - _lat_to_y(clat, z)) * 256 + f.height / 2
    return round(x), round(y)


def _near(px: tuple[int, int, int], colour: tuple[int, int, int], tol: int = 6) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, colour, strict=True))


def _disc_is(img: Image.Image, x: int, y: int, colour: tuple[int, int, int]) -> bool:
    """A disc of the colour is centred on (x, y) to within a pixel, not merely touching it."""
    if not all(
        _near(img.getpixel((x + dx, y + dy)), colour) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
    ):
        return False
    hits = [
        (px, py)
        for px in range(max(0, x - 12), min(img.width, x + 13))
        for py in range(max(0, y - 12), min(img.height, y + 13))
        if _near(img.getpixel((px, py)), colour)
    ]
    mx = sum(p[0] for p in hits) / len(hits)
    my = sum(p[1] for p in hits) / len(hits)
    return abs(mx - x) <= 1.0 and abs(my - y) <= 1.0


async def test_markers_are_coloured_by_state_at_their_positions(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    result = await renderer.render_map(MapView("all"), trio, now=NOW, tz=TZ)
    img = _image(result)
    assert img.size == (800, 600)
    assert result.tiles_missing == 0 and tile_server.count > 0
    places = {}
    for (ont, _), colour in zip(trio, (RED, GREEN, ORANGE), strict=True):
        x, y = _expected_px(result, ont.lon, ont.lat)  # type: ignore[arg-type]
        assert 0 < x < 800 and result.plan.header.height < y < 600
        assert _disc_is(img, x, y, colour), (ont.id, (x, y), img.getpixel((x, y)))
        places[ont.id] = (x, y)
    # West is left, north is up: the projection is not mirrored.
    assert places["off1"][0] < places["warn1"][0] < places["on1"][0]
    assert places["warn1"][1] < places["off1"][1]


async def test_offline_marker_is_drawn_above_an_online_one_at_the_same_place(
    tile_server: TileServer, make_renderer: RendererFactory
) -> None:
    items = [
        (Ont("a", lat=-7.80, lon=110.37), state("a", Status.ON)),
        (Ont("b", lat=-7.80, lon=110.37), state("b", Status.OFF)),
        (Ont("c", lat=-7.79, lon=110.38), state("c", Status.ON)),
    ]
    renderer = make_renderer(tile_server.url_template)
    for ordering in (items, list(reversed(items))):
        result = await renderer.render_map(MapView("all"), ordering, now=NOW, tz=TZ)
        x, y = _expected_px(result, 110.37, -7.80)
        assert _disc_is(_image(result), x, y, RED)


async def test_legend_shows_the_counts_of_the_data(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    items = [*trio, (Ont("nowhere", lat=None, lon=None), state("nowhere", Status.OFF))]
    items += [
        (Ont(f"g{i}", lat=-7.81, lon=110.37 + i * 1e-5), state(f"g{i}", Status.ON))
        for i in range(12)
    ]
    renderer = make_renderer(tile_server.url_template)
    result = await renderer.render_map(MapView("all"), items, now=NOW, tz=TZ)
    expected = [
        LegendEntry("Offline/critical", 1, RED),
        LegendEntry("Warning", 1, ORANGE),
        LegendEntry("Online", 13, GREEN),
        LegendEntry("Unknown", 0, COLOURS[Category.UNKNOWN]),
        LegendEntry("No location", 1, None),
    ]
    assert list(result.plan.legend) == expected
    # The pixels of the header are exactly the header drawn for these counts and this title.
    s = result.plan.s
    layout = header_layout(800, "All ONTs — 27 Nov 2026 14:05 WIB", expected, s)
    want = Image.new("RGB", (800, 600), (0, 0, 0))
    draw_header(want, layout, s)
    box = (0, 0, 800, layout.height + 1)
    got = _image(result).crop(box)
    assert ImageChops.difference(got, want.crop(box)).getbbox() is None
    # ... and differ from a header claiming another count, so the comparison can fail.
    wrong = [*expected[:2], LegendEntry("Online", 12, GREEN), *expected[3:]]
    other = Image.new("RGB", (800, 600), (0, 0, 0))
    draw_header(other, header_layout(800, layout.title, wrong, s), s)
    assert ImageChops.difference(got, other.crop(box)).getbbox() is not None


async def test_thousands_of_onts_are_clustered_and_all_counted(
    tile_server: TileServer, make_renderer: RendererFactory
) -> None:
    items = []
    for i in range(3000):
        status = Status.OFF if i % 10 == 0 else Status.ON
        lat, lon = -7.8 + (i % 50) * 0.002, 110.3 + (i // 50) * 0.002
        items.append((Ont(str(i), lat=lat, lon=lon, area=f"A{i % 8}"), state(str(i), status)))
    renderer = make_renderer(tile_server.url_template)
    result = await renderer.render_map(MapView("all"), items, now=NOW, tz=TZ)
    marks = result.plan.marks
    assert len(marks) < 600  # clustered, not 3,000 dots
    assert sum(m.count for m in marks if m.category is Category.OFFLINE) == 300
    assert sum(m.count for m in marks if m.category is Category.ONLINE) == 2700
    assert any(m.count > 1 for m in marks)
    img = _image(result)
    biggest_red = max((m for m in marks if m.category is Category.OFFLINE), key=lambda m: m.count)
    # The cluster's disc, beside its white digits, is red.
    r = cluster_radius(biggest_red.count, result.plan.s)
    assert _near(img.getpixel((biggest_red.x, biggest_red.y + r - 3)), RED)


async def test_area_view_shows_only_its_area(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    result = await renderer.render_map(MapView("area", "baciro"), trio, now=NOW, tz=TZ)
    assert {(e.label, e.count) for e in result.plan.legend} >= {
        ("Offline/critical", 1),
        ("Online", 1),
        ("Warning", 0),
    }
    img = _image(result)
    x, y = _expected_px(result, 110.37, -7.79)  # the Terban ONT, not in this view
    assert not (0 <= x < 800 and 0 <= y < 600) or not _disc_is(img, x, y, ORANGE)


async def test_ont_view_centres_the_ont_with_its_neighbours(
    tile_server: TileServer, make_renderer: RendererFactory
) -> None:
    items = [
        (Ont("t", "Target", lat=-7.80, lon=110.37), state("t", Status.OFF)),
        (Ont("n", lat=-7.8005, lon=110.3705), state("n", Status.ON)),
        (Ont("far", lat=-7.5, lon=110.0), state("far", Status.ON)),
    ]
    renderer = make_renderer(tile_server.url_template)
    result = await renderer.render_map(MapView("ont", "t"), items, now=NOW, tz=TZ)
    img = _image(result)
    tx, ty = _expected_px(result, 110.37, -7.80)
    nx, ny = _expected_px(result, 110.3705, -7.8005)
    assert abs(tx - 400) <= 1
    assert _disc_is(img, tx, ty, RED) and _disc_is(img, nx, ny, GREEN)
    counts = {e.label: e.count for e in result.plan.legend}
    assert counts["Online"] == 1 and counts["Offline/critical"] == 1  # "far" is not in view


async def test_unknown_area_or_ont_is_a_lookup_error(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    with pytest.raises(LookupError, match="area"):
        await renderer.render(MapView("area", "Atlantis"), trio, now=NOW, tz=TZ)
    with pytest.raises(LookupError, match="ont"):
        await renderer.render(MapView("ont", "nope"), trio, now=NOW, tz=TZ)


async def test_empty_views_render_with_a_note(
    tile_server: TileServer, make_renderer: RendererFactory
) -> None:
    renderer = make_renderer(tile_server.url_template)
    all_on = [(Ont("a", lat=-7.8, lon=110.37), state("a", Status.ON))]
    result = await renderer.render_map(MapView("offline"), all_on, now=NOW, tz=TZ)
    assert result.notes == ("No offline ONTs",)
    assert [(e.label, e.count) for e in result.plan.legend] == [("Offline/critical", 0)]
    no_coords = [(Ont("a"), state("a", Status.OFF)), (Ont("b"), state("b", Status.ON))]
    result = await renderer.render_map(MapView("all"), no_coords, now=NOW, tz=TZ)
    assert result.tiles_wanted == 0 and "No ONT here has coordinates" in result.notes
    assert ("No location", 2) in [(e.label, e.count) for e in result.plan.legend]
    assert _image(result).size == (800, 600)
    result = await renderer.render_map(MapView("ont", "a"), no_coords, now=NOW, tz=TZ)
    assert result.notes == ("ONT a has no coordinates",)


@pytest.mark.parametrize(("w", "h"), [(200, 200), (2000, 2000), (2000, 200)])
async def test_sizes_stay_within_telegram_photo_limits(
    tile_server: TileServer,
    make_renderer: RendererFactory,
    trio: list[tuple[Ont, OntState]],
    w: int,
    h: int,
) -> None:
    renderer = make_renderer(tile_server.url_template)
    png = await renderer.render(MapView("all"), trio, width=w, height=h, now=NOW, tz=TZ)
    img = Image.open(BytesIO(png))
    assert img.size == (w, h) and w + h <= 10000 and len(png) <= 10 * 2**20


async def test_bad_sizes_are_refused(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    with pytest.raises(ValueError, match=r"^width: "):
        await renderer.render(MapView("all"), trio, width=5000, now=NOW, tz=TZ)
    assert tile_server.count == 0
