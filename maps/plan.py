"""The render plan: a pure description of one map image (frame, marks, header, notes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from maps.clusters import cluster
from maps.mercator import Frame, Padding, centred, fit
from maps.overlay import (
    HeaderLayout,
    LegendEntry,
    Mark,
    cluster_radius,
    footer_height,
    header_layout,
    ui_scale,
)
from maps.selection import Point, Selection, select
from maps.style import COLOURS, LABELS, LEGEND_ORDER, NO_COORDS_LABEL, Category
from maps.view import MapView
from monitor.model import Ont, OntState

MAX_VIEW_ZOOM = 16  # fitting a handful of close ONTs should not zoom into one roof
CLUSTER_BELOW_ZOOM = 16  # at 16 and above ONTs are drawn one by one
ONT_VIEW_ZOOM = 16  # about 2 km across at 800 px: the ONT and its street's neighbours
CLUSTER_CELL = 40  # px at ui scale 1: about two marker widths plus a gap


@dataclass(frozen=True, slots=True)
class MapPlan:
    """Everything needed to draw one image; hashable, so equal plans can share one render."""

    frame: Frame
    use_tiles: bool
    s: float
    header: HeaderLayout
    marks: tuple[Mark, ...]
    focus: tuple[int, int, str] | None
    note: str
    legend: tuple[LegendEntry, ...]

    def tiles(self) -> list[tuple[int, int, int]]:
        """The (z, x, y) tiles this image needs, none when it is drawn without tiles."""
        return self.frame.tiles() if self.use_tiles else []


def _time_text(now: datetime, tz: tzinfo) -> str:
    local = now.astimezone(tz)
    zone = local.strftime("%Z")
    return local.strftime("%d %b %Y %H:%M") + (f" {zone}" if zone else "")


def _legend(counts: Counter[Category], no_coords: int, view: MapView) -> list[LegendEntry]:
    # The offline view only ever holds OFF ONTs, so the other swatches would be noise.
    cats = (Category.OFFLINE,) if view.kind == "offline" else LEGEND_ORDER
    entries = [LegendEntry(LABELS[c], counts.get(c, 0), COLOURS[c]) for c in cats]
    if no_coords:
        entries.append(LegendEntry(NO_COORDS_LABEL, no_coords, None))
    return entries


def _marks(points: Sequence[Point], frame: Frame, s: float) -> list[Mark]:
    scale = frame.scale
    ox = frame.width / 2 - frame.cx * scale
    oy = frame.height / 2 - frame.cy * scale
    # Projection inlined (no per-point Frame.to_px call): this loop runs 10,000 times.
    projected = [(p.wx * scale + ox, p.wy * scale + oy, p.category) for p in points]
    if frame.zoom < CLUSTER_BELOW_ZOOM:
        return cluster(projected, CLUSTER_CELL * s)
    marks = [Mark(round(x), round(y), cat) for x, y, cat in projected]
    marks.sort(key=lambda m: (m.category, m.y, m.x))
    return marks


def _padding(header: HeaderLayout, s: float) -> Padding:
    m = cluster_radius(999, s) + 2  # room for a big cluster at the edge
    return Padding(left=m, top=header.height + m, right=m, bottom=footer_height(s) + m)


def plan_map(
    view: MapView,
    items: Sequence[tuple[Ont, OntState]],
    width: int,
    height: int,
    now: datetime,
    tz: tzinfo,
) -> MapPlan:
    """Select the view's ONTs, frame them, cluster them and lay out header and legend."""
    sel = select(view, items)
    s = ui_scale(width, height)
    title = f"{sel.title} — {_time_text(now, tz)}"
    if sel.focus is not None:
        return _plan_ont(view, sel, title, width, height, s)
    counts = Counter(p.category for p in sel.points)
    legend = _legend(counts, sel.no_coords, view)
    header = header_layout(width, title, legend, s)
    framed = sel.points or sel.context
    frame = fit(
        ((p.lon, p.lat) for p in framed), width, height, _padding(header, s), max_zoom=MAX_VIEW_ZOOM
    )
    use_tiles = frame is not None
    if frame is None:  # nothing anywhere has coordinates: a plain world grid and the note
        frame = centred(0.0, 0.0, 1, width, height)
    marks = _marks(sel.points, frame, s)
    return MapPlan(frame, use_tiles, s, header, tuple(marks), None, sel.note, tuple(legend))


def _plan_ont(
    view: MapView, sel: Selection, title: str, width: int, height: int, s: float
) -> MapPlan:
    focus = sel.focus
    assert focus is not None
    # First pass with every point's counts, only to learn the header's height.
    rough = header_layout(width, title, _legend(Counter(), 0, view), s)
    below = (rough.height - footer_height(s)) / 2  # centre the ONT in the map area
    base = centred(focus.lon, focus.lat, ONT_VIEW_ZOOM, width, height)
    frame = Frame(base.zoom, base.cx, base.cy - below / base.scale, width, height)
    marks = [
        m for m in _marks(sel.points, frame, s) if 0 <= m.x < width and rough.height <= m.y < height
    ]
    counts: Counter[Category] = Counter()
    for m in marks:
        counts[m.category] += m.count
    legend = _legend(counts, 0, view)
    header = header_layout(width, title, legend, s)
    fx, fy = frame.to_px(focus.wx, focus.wy)
    return MapPlan(
        frame, True, s, header, tuple(marks), (fx, fy, focus.label), sel.note, tuple(legend)
    )
