"""Projection, view fitting and clustering: the pure parts of the map."""

from __future__ import annotations

import random

import pytest
from staticmap.staticmap import _lat_to_y, _lon_to_x

from maps.clusters import cluster
from maps.mercator import Frame, Padding, fit, lat_of, lon_of, nice_step, world_x, world_y
from maps.style import Category


def test_world_coordinates_match_staticmap() -> None:
    for lon, lat in [(110.37, -7.8), (-0.1, 51.5), (0.0, 0.0), (179.9, 60.0)]:
        assert world_x(lon) * 2**10 == pytest.approx(_lon_to_x(lon, 10))
        assert world_y(lat) * 2**10 == pytest.approx(_lat_to_y(lat, 10))
        assert lon_of(world_x(lon)) == pytest.approx(lon)
        assert lat_of(world_y(lat)) == pytest.approx(lat)


@pytest.mark.parametrize("seed", range(20))
def test_fit_keeps_every_point_inside_the_padding(seed: int) -> None:
    rnd = random.Random(seed)
    clat, clon = rnd.uniform(-60, 60), rnd.uniform(-170, 170)
    spread = 10 ** rnd.uniform(-3.5, 0.5)
    pts = [(clon + rnd.gauss(0, spread), clat + rnd.gauss(0, spread)) for _ in range(50)]
    w, h = rnd.randint(200, 2000), rnd.randint(200, 2000)
    pad = Padding(left=20, top=rnd.randint(20, 150), right=30, bottom=40)
    frame = fit(pts, w, h, pad, max_zoom=17)
    assert frame is not None
    for lon, lat in pts:
        x, y = frame.lonlat_to_px(lon, lat)
        assert pad.left - 1 <= x <= w - pad.right + 1
        assert pad.top - 1 <= y <= h - pad.bottom + 1
    if frame.zoom < 17:  # one zoom more would not have fitted
        bigger = Frame(frame.zoom + 1, frame.cx, frame.cy, w, h)
        xs = [bigger.lonlat_to_px(lon, lat)[0] for lon, lat in pts]
        ys = [bigger.lonlat_to_px(lon, lat)[1] for lon, lat in pts]
        inner_w, inner_h = w - pad.left - pad.right, h - pad.top - pad.bottom
        assert max(xs) - min(xs) > inner_w - 2 or max(ys) - min(ys) > inner_h - 2


def test_fit_of_one_point_uses_max_zoom_and_of_none_is_none() -> None:
    frame = fit([(110.37, -7.8)], 800, 600, max_zoom=15)
    assert frame is not None and frame.zoom == 15
    assert frame.lonlat_to_px(110.37, -7.8) == (400, 300)
    assert fit([], 800, 600) is None


def test_tiles_cover_the_frame() -> None:
    frame = Frame(3, 0.5, 0.5, 800, 600)
    tiles = frame.tiles()
    assert len(tiles) == len(set(tiles))
    assert all(z == 3 and 0 <= x < 8 and 0 <= y < 8 for z, x, y in tiles)
    # 800 px centred on a tile corner needs 4 columns; 600 px needs 4 rows (2 partial).
    assert len({x for _, x, _ in tiles}) == 4 and len({y for _, _, y in tiles}) == 4


@pytest.mark.parametrize(("raw", "step"), [(0.7, 0.5), (1.0, 1.0), (180.0, 100.0), (999, 500)])
def test_nice_step(raw: float, step: float) -> None:
    assert nice_step(raw) == pytest.approx(step)


def test_cluster_merges_same_colour_neighbours_only() -> None:
    pts = [(100 + i % 5, 100 + i // 5, Category.ONLINE) for i in range(25)]
    pts += [(102, 102, Category.OFFLINE)] * 3
    pts += [(700, 500, Category.ONLINE)]
    marks = cluster(pts, 40)
    by_cat = {(m.category, m.count) for m in marks}
    assert by_cat == {(Category.ONLINE, 25), (Category.OFFLINE, 3), (Category.ONLINE, 1)}
    assert marks[-1].category is Category.OFFLINE  # drawn last, on top
    big = next(m for m in marks if m.count == 25)
    assert (big.x, big.y) == (102, 102)  # the members' mean


def test_cluster_joins_a_group_split_by_a_grid_line() -> None:
    pts = [(39.0, 10.0, Category.WARNING), (41.0, 10.0, Category.WARNING)]
    assert [m.count for m in cluster(pts, 40)] == [2]


@pytest.mark.parametrize("seed", range(5))
def test_cluster_preserves_counts(seed: int) -> None:
    rnd = random.Random(seed)
    cats = list(Category)
    pts = [(rnd.uniform(0, 800), rnd.uniform(0, 600), rnd.choice(cats)) for _ in range(5000)]
    marks = cluster(pts, 40)
    for cat in cats:
        assert sum(m.count for m in marks if m.category is cat) == sum(
            1 for p in pts if p[2] is cat
        )
    assert len(marks) < 5000 / 4  # it actually clustered
