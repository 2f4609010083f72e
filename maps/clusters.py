"""Grid clustering: nearby markers of the same colour become one marker with a count."""

from __future__ import annotations

from collections.abc import Iterable

from maps.overlay import Mark
from maps.style import Category


def cluster(
    points: Iterable[tuple[float, float, Category]],
    cell: float,
) -> list[Mark]:
    """Bucket (x, y, category) image-pixel points into cell x cell squares per category.

    The grid is anchored at the image origin; each bucket becomes one mark at its members'
    mean position. Grid clustering is O(n) with one dict, which keeps 10,000 ONTs cheap.
    Marks come back sorted by category so offline is drawn last, on top.
    """
    if cell <= 0:
        raise ValueError("cell: must be positive")
    buckets: dict[tuple[int, int, Category], list[float]] = {}
    for x, y, cat in points:
        key = (int(x // cell), int(y // cell), cat)
        acc = buckets.get(key)
        if acc is None:
            buckets[key] = [x, y, 1.0]
        else:
            acc[0] += x
            acc[1] += y
            acc[2] += 1.0
    marks = [
        Mark(round(sx / n), round(sy / n), cat, int(n))
        for (_, _, cat), (sx, sy, n) in buckets.items()
    ]
    marks.sort(key=lambda m: (m.category, m.count, m.y, m.x))
    return marks
