"""How an ONT's state looks on the map: its category, colours, labels and drawing order."""

from __future__ import annotations

import enum

from monitor.model import OntState, Severity, Status


class Category(enum.IntEnum):
    """Marker class of an ONT; the value is the drawing order, so offline ends up on top."""

    ONLINE = 0
    UNKNOWN = 1
    WARNING = 2
    OFFLINE = 3  # OFF, or any critical incident


RGB = tuple[int, int, int]

COLOURS: dict[Category, RGB] = {
    Category.ONLINE: (46, 157, 58),  # green
    Category.UNKNOWN: (140, 140, 140),  # grey
    Category.WARNING: (242, 140, 0),  # orange
    Category.OFFLINE: (215, 25, 28),  # red
}

LABELS: dict[Category, str] = {
    Category.OFFLINE: "Offline/critical",
    Category.WARNING: "Warning",
    Category.ONLINE: "Online",
    Category.UNKNOWN: "Unknown",
}

# Legend order: what needs a technician first.
LEGEND_ORDER = (Category.OFFLINE, Category.WARNING, Category.ONLINE, Category.UNKNOWN)

NO_COORDS_LABEL = "No location"
FOCUS_RING: RGB = (31, 95, 191)  # blue: not one of the state colours
TEXT: RGB = (25, 25, 25)
PANEL: RGB = (255, 255, 255)
PANEL_EDGE: RGB = (170, 170, 170)
FALLBACK_BG: RGB = (236, 238, 241)
GRID_LINE: RGB = (200, 204, 210)
NOTE_BG: RGB = (255, 243, 205)


def category_of(state: OntState) -> Category:
    """Critical or OFF is red, warning orange, ON green, anything else grey."""
    severity = state.severity
    if severity is Severity.CRITICAL or state.status is Status.OFF:
        return Category.OFFLINE
    if severity is Severity.WARNING:
        return Category.WARNING
    if state.status is Status.ON:
        return Category.ONLINE
    return Category.UNKNOWN
