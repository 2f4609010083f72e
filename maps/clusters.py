"""Grid clustering: nearby markers of the same colour become one marker with a count."""

from __future__ import annotations

import math
from collections.abc import Iterable

from maps.overlay import Mark
from maps.style import Category

_Cell = tuple[int, int, Category]


def cluster(points: Iterable[tuple[float, float, Category]], cell: float) -> list[Mark]:
    """Cluster (x, y, category) image-pixel points of one colour lying within about a cell.

    Points are bucketed into cell x cell squares per category (O(n) with one dict, which
    keeps 10,000 ONTs cheap); then one pass merges neighbouring buckets whose centres are
    closer than a cell, so a group split by a grid line does not show as two overlapping
    clusters. Each cluster sits at its members' mean position. Marks come back sorted by
    category so offline is drawn last, on top.
    """
    if cell <= 0:
        raise ValueError("cell: must be positive")
    buckets: dict[_Cell, list[float]] = {}
    for x, y, cat in points:
        key = (int(x // cell), int(y // cell), cat)
        acc = buckets.get(key)
        if acc is None:
            buckets[key] = [x, y, 1.0]
        else:
            acc[0] += x
            acc[1] += y
            acc[2] += 1.0
    _merge_neighbours(buckets, cell)
    marks = [
        Mark(round(sx / n), round(sy / n), cat, int(n))
        for (_, _, cat), (sx, sy, n) in buckets.items()
    ]
    marks.sort(key=lambda m: (m.category, m.count, m.y, m.x))
    return marks


def _merge_neighbours(buckets: dict[_Cell, list[float]], cell: float) -> None:
    # Biggest first, so small groups join the big one next to them rather than the reverse.
    order = sorted(buckets, key=lambda k: -buckets[k][2])
    for key in order:
        acc = buckets.get(key)
        if acc is None:  # already absorbed
            continue
        gx, gy, cat = key
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                other_key = (gx + dx, gy + dy, cat)
                if other_key == key:
                    continue
                other = buckets.get(other_key)
                if other is None:
                    continue
                ax, ay = acc[0] / acc[2], acc[1] / acc[2]
                bx, by = other[0] / other[2], other[1] / other[2]
                if math.hypot(ax - bx, ay - by) < cell:
                    acc[0] += other[0]
                    acc[1] += other[1]
                    acc[2] += other[2]
                    del buckets[other_key]
