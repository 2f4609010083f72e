"""Web Mercator arithmetic: world pixels, fitting a view to points, tiles, ground resolution."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TILE_SIZE = 256
MIN_ZOOM = 1
MAX_ZOOM = 17  # street level; OSM serves 19 but 17 already shows single houses
MAX_LAT = 85.05112878  # Web Mercator's square world ends here
EARTH_CIRCUMFERENCE_M = 40075016.686


def world_x(lon: float) -> float:
    """Longitude as a fraction 0..1 of the world's width."""
    return (lon + 180.0) / 360.0


def world_y(lat: float) -> float:
    """Latitude as a fraction 0..1 of the world's height, 0 at the north edge."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    rad = math.radians(lat)
    return (1.0 - math.log(math.tan(rad) + 1.0 / math.cos(rad)) / math.pi) / 2.0


def lon_of(wx: float) -> float:
    """Inverse of world_x."""
    return wx * 360.0 - 180.0


def lat_of(wy: float) -> float:
    """Inverse of world_y."""
    return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * wy))))


@dataclass(frozen=True, slots=True)
class Frame:
    """An image of width x height pixels showing the world at zoom, centred on (cx, cy)."""

    zoom: int
    cx: float  # centre, world fraction
    cy: float
    width: int
    height: int

    @property
    def scale(self) -> float:
        """Pixels per world width at this zoom."""
        return TILE_SIZE * float(2**self.zoom)

    @property
    def center_lonlat(self) -> tuple[float, float]:
        """The centre as (lon, lat), the order staticmap takes."""
        return lon_of(self.cx), lat_of(self.cy)

    def to_px(self, wx: float, wy: float) -> tuple[int, int]:
        """World fractions to image pixels, rounded the way staticmap rounds its tiles."""
        s = self.scale
        return (
            round((wx - self.cx) * s + self.width / 2),
            round((wy - self.cy) * s + self.height / 2),
        )

    def lonlat_to_px(self, lon: float, lat: float) -> tuple[int, int]:
        """Longitude/latitude to image pixels."""
        return self.to_px(world_x(lon), world_y(lat))

    def px_to_lonlat(self, px: float, py: float) -> tuple[float, float]:
        """Image pixels to longitude/latitude."""
        s = self.scale
        return (
            lon_of(self.cx + (px - self.width / 2) / s),
            lat_of(self.cy + (py - self.height / 2) / s),
        )

    def tiles(self) -> list[tuple[int, int, int]]:
        """(z, x, y) of every tile the image covers, the same set staticmap's base layer draws."""
        n = 2**self.zoom
        half_w = 0.5 * self.width / TILE_SIZE
        half_h = 0.5 * self.height / TILE_SIZE
        x_min = math.floor(self.cx * n - half_w)
        x_max = math.ceil(self.cx * n + half_w)
        y_min = math.floor(self.cy * n - half_h)
        y_max = math.ceil(self.cy * n + half_h)
        out = []
        for x in range(x_min, x_max):
            for y in range(y_min, y_max):
                if 0 <= y < n:  # beyond the poles there is nothing to fetch
                    out.append((self.zoom, x % n, y))
        return out

    def metres_per_px(self) -> float:
        """Ground distance of one pixel at the centre's latitude."""
        lat = math.radians(lat_of(self.cy))
        return EARTH_CIRCUMFERENCE_M * math.cos(lat) / self.scale


@dataclass(frozen=True, slots=True)
class Padding:
    """Pixels kept free at each edge (title bar on top, attribution at the bottom)."""

    left: int = 24
    top: int = 24
    right: int = 24
    bottom: int = 24


def fit(
    points: Iterable[tuple[float, float]],
    width: int,
    height: int,
    padding: Padding = Padding(),
    *,
    max_zoom: int = MAX_ZOOM,
    min_zoom: int = MIN_ZOOM,
) -> Frame | None:
    """The highest-zoom frame showing every (lon, lat) point inside the padding; None if none."""
    xs: list[float] = []
    ys: list[float] = []
    for lon, lat in points:
        xs.append(world_x(lon))
        ys.append(world_y(lat))
    if not xs:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    inner_w = max(1, width - padding.left - padding.right)
    inner_h = max(1, height - padding.top - padding.bottom)
    zoom = max_zoom
    span_x, span_y = x1 - x0, y1 - y0
    # Largest z with span * 256 * 2**z <= inner size, solved directly rather than by trying
    # every zoom (staticmap's loop over 18 zooms x all markers is what costs it 63 ms).
    for span, inner in ((span_x, inner_w), (span_y, inner_h)):
        if span > 0:
            zoom = min(zoom, math.floor(math.log2(inner / (span * TILE_SIZE))))
    zoom = max(min_zoom, min(max_zoom, zoom))
    scale = TILE_SIZE * float(2**zoom)
    # Centre the points inside the padded box, so the image centre shifts by half the
    # difference between opposite paddings.
    cx = (x0 + x1) / 2 - (padding.left - padding.right) / 2 / scale
    cy = (y0 + y1) / 2 - (padding.top - padding.bottom) / 2 / scale
    return Frame(zoom, cx, cy, width, height)


def centred(lon: float, lat: float, zoom: int, width: int, height: int) -> Frame:
    """A frame centred on one point at a given zoom."""
    return Frame(zoom, world_x(lon), world_y(lat), width, height)


def nice_step(raw: float, steps: Sequence[float] = (1.0, 2.0, 5.0)) -> float:
    """The largest 1/2/5 x 10^n not above raw (for scale bars and grid spacing)."""
    if raw <= 0:
        raise ValueError("raw: must be positive")
    base = 10.0 ** math.floor(math.log10(raw))
    best = base
    for m in steps:
        if m * base <= raw:
            best = m * base
    return best
