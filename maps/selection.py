"""From the whole inventory to what one view shows: its points, counts and title."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from maps.mercator import world_x, world_y
from maps.style import Category, category_of
from maps.view import MapView
from monitor.model import Ont, OntState, Status


@dataclass(frozen=True, slots=True)
class Point:
    """One ONT with coordinates, ready to project."""

    ont_id: str
    label: str
    lon: float
    lat: float
    wx: float  # world fraction, computed once per render
    wy: float
    category: Category


@dataclass(slots=True)
class Selection:
    """What a view picked from the inventory."""

    title: str
    points: list[Point] = field(default_factory=list)
    no_coords: int = 0
    focus: Point | None = None  # ont view: the ONT itself
    context: list[Point] = field(default_factory=list)  # empty views: frame these instead
    note: str = ""


def _has_coords(ont: Ont) -> bool:
    lat, lon = ont.lat, ont.lon
    return (
        lat is not None
        and lon is not None
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
        and not (lat == 0.0 and lon == 0.0)  # 0,0 is an unset field, not a customer at sea
    )


def _point(ont: Ont, state: OntState) -> Point:
    lat, lon = float(ont.lat), float(ont.lon)  # type: ignore[arg-type]
    return Point(ont.id, ont.label, lon, lat, world_x(lon), world_y(lat), category_of(state))


def _find_area(name: str, items: Sequence[tuple[Ont, OntState]]) -> str | None:
    areas = {ont.area for ont, _ in items if ont.area}
    if name in areas:
        return name
    folded = [a for a in areas if a.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def select(view: MapView, items: Sequence[tuple[Ont, OntState]]) -> Selection:
    """Pick the view's ONTs; LookupError when it names an area or ONT that does not exist."""
    if view.kind == "ont":
        return _select_ont(view.value, items)
    if view.kind == "area":
        area = _find_area(view.value, items)
        if area is None:
            raise LookupError(f"area: unknown area {view.value!r}")
        sel = Selection(title=f"Area {area}")
        wanted = [(o, s) for o, s in items if o.area == area]
    elif view.kind == "offline":
        sel = Selection(title="Offline ONTs")
        wanted = [(o, s) for o, s in items if s.status is Status.OFF]
    else:
        sel = Selection(title="All ONTs")
        wanted = list(items)
    for ont, state in wanted:
        if _has_coords(ont):
            sel.points.append(_point(ont, state))
        else:
            sel.no_coords += 1
    if not sel.points:
        # Still draw a map of where the network is, so "nothing offline" reads as good news.
        sel.context = [_point(o, s) for o, s in items if _has_coords(o)]
        if not wanted:
            sel.note = "No offline ONTs" if view.kind == "offline" else "No ONTs to show"
        else:
            sel.note = "No ONT here has coordinates"
    return sel


def _select_ont(ont_id: str, items: Sequence[tuple[Ont, OntState]]) -> Selection:
    target = next(((o, s) for o, s in items if o.id == ont_id), None)
    if target is None:
        folded = [(o, s) for o, s in items if o.id.casefold() == ont_id.casefold()]
        target = folded[0] if len(folded) == 1 else None
    if target is None:
        raise LookupError(f"ont: unknown ONT {ont_id!r}")
    ont, state = target
    title = f"ONT {ont.id}" + (f" · {ont.name}" if ont.name and ont.name != ont.id else "")
    sel = Selection(title=title)
    if not _has_coords(ont):
        sel.no_coords = 1
        sel.note = f"ONT {ont.id} has no coordinates"
        sel.context = [_point(o, s) for o, s in items if _has_coords(o)]
        return sel
    sel.focus = _point(ont, state)
    # Neighbours: every ONT with coordinates; the planner keeps those inside the frame.
    sel.points = [_point(o, s) for o, s in items if _has_coords(o)]
    return sel
