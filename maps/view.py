"""Which ONTs a map shows: the MapView, and parsing it from the HTTP query and the bot command."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

ViewKind = Literal["all", "offline", "area", "ont"]

MIN_SIDE = 200
MAX_SIDE = 2000  # 2000+2000 stays well inside Telegram's width+height <= 10000 photo limit
DEFAULT_WIDTH = 800
DEFAULT_HEIGHT = 600
MAX_VALUE_LEN = 100  # area names and ONT ids; longer is a typo or an attack, not a name

_ALL_WORDS = frozenset({"", "all", "semua"})
_OFFLINE_WORDS = frozenset({"offline", "off", "down", "mati"})


@dataclass(frozen=True, slots=True)
class MapView:
    """What a map shows: all ONTs, the offline ones, one area, or one ONT and its neighbours."""

    kind: ViewKind
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("all", "offline", "area", "ont"):
            raise ValueError(f"kind: must be all, offline, area or ont, not {self.kind!r}")
        if self.kind in ("area", "ont") and not self.value:
            raise ValueError(f"{self.kind}: must not be empty")
        if self.kind in ("all", "offline") and self.value:
            raise ValueError(f"value: must be empty for the {self.kind} view")


def _clean_value(field: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError(f"{field}: must not be empty")
    if len(value) > MAX_VALUE_LEN:
        raise ValueError(f"{field}: must be at most {MAX_VALUE_LEN} characters")
    if not value.isprintable():
        raise ValueError(f"{field}: must not contain control characters")
    return value


def _side(params: Mapping[str, str], field: str, default: int) -> int:
    raw = params.get(field)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ValueError(f"{field}: must be an integer {MIN_SIDE}..{MAX_SIDE}") from None
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise ValueError(f"{field}: must be {MIN_SIDE}..{MAX_SIDE}")
    return value


def parse_query(params: Mapping[str, str]) -> tuple[MapView, int, int]:
    """Parse GET /api/map.png's query (view=all|offline, area=, ont=, width=, height=)."""
    given = [name for name in ("view", "area", "ont") if params.get(name, "").strip()]
    if len(given) > 1:
        raise ValueError(f"{', '.join(given)}: give only one of view, area, ont")
    if "area" in given:
        view = MapView("area", _clean_value("area", params["area"]))
    elif "ont" in given:
        view = MapView("ont", _clean_value("ont", params["ont"]))
    else:
        word = params.get("view", "").strip().lower()
        if word in _ALL_WORDS:
            view = MapView("all")
        elif word == "offline":
            view = MapView("offline")
        else:
            raise ValueError("view: must be all or offline (use area= or ont= for the others)")
    width = _side(params, "width", DEFAULT_WIDTH)
    height = _side(params, "height", DEFAULT_HEIGHT)
    return view, width, height


def _find(value: str, known: Collection[str]) -> str | None:
    """The known name equal to value: exactly, else ignoring case when that is unambiguous."""
    if value in known:
        return value
    folded = value.casefold()
    matches = [name for name in known if name.casefold() == folded]
    return matches[0] if len(matches) == 1 else None


def parse_command_arg(
    arg: str, known_areas: Collection[str], known_ont_ids: Collection[str]
) -> MapView:
    """Parse the bot's `/map [offline|AREA|ONT_ID]` argument ("area X" / "ont X" disambiguate)."""
    text = " ".join(arg.split())  # chat clients add stray and doubled spaces
    lowered = text.lower()
    if lowered in _ALL_WORDS:
        return MapView("all")
    if lowered in _OFFLINE_WORDS:
        return MapView("offline")
    head, _, rest = text.partition(" ")
    if head.lower() in ("area", "ont") and rest:
        kind = head.lower()
        value = _clean_value(kind, rest)
        known = known_areas if kind == "area" else known_ont_ids
        found = _find(value, known)
        if found is None:
            raise ValueError(f"{kind}: unknown {kind} {value!r}")
        return MapView("area" if kind == "area" else "ont", found)
    value = _clean_value("map", text)
    # An ONT id is the more specific name, so it wins when a string is both.
    if value in known_ont_ids:
        return MapView("ont", value)
    area = _find(value, known_areas)
    if area is not None:
        return MapView("area", area)
    ont = _find(value, known_ont_ids)
    if ont is not None:
        return MapView("ont", ont)
    raise ValueError(f"map: {value!r} is neither an area nor an ONT id (or say offline)")
