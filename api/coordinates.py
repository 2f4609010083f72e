"""Coordinates as spreadsheets write them: decimal commas, hemisphere letters, degrees and DMS.

Accepted, for a latitude (N/S, Indonesian LU/LS) or a longitude (E/W, Indonesian BT/BB):
`-7.799528`, `-7,799528`, `7.799528°S`, `S 7.799528`, `7,8 LS`, `110.4°E`,
`7°47'58.3"S`, `7° 47′ 58.3″ S`, `7°47.97'S` (degrees and decimal minutes), `7 47 58.3 S`.
"""

from __future__ import annotations

import math
import re
from typing import Literal

Axis = Literal["lat", "lon"]

# Indonesian abbreviations first (two letters), then the one-letter forms.
_HEMISPHERES: dict[str, tuple[Axis, int]] = {
    "LU": ("lat", 1),
    "LS": ("lat", -1),
    "BT": ("lon", 1),
    "BB": ("lon", -1),
    "N": ("lat", 1),
    "S": ("lat", -1),
    "E": ("lon", 1),
    "W": ("lon", -1),
    "U": ("lat", 1),
    "T": ("lon", 1),
    "B": ("lon", -1),
}
_LETTERS = "|".join(sorted(_HEMISPHERES, key=len, reverse=True))
_LEADING = re.compile(rf"^({_LETTERS})(?![a-z])\.?\s*(.*)$", re.IGNORECASE)
_TRAILING = re.compile(rf"^(.*?)\s*(?<![a-z])({_LETTERS})\.?$", re.IGNORECASE)
_NUMBER = r"[+-]?\d+(?:[.,]\d+)?"
_DMS = re.compile(
    rf"^(?P<deg>{_NUMBER})\s*[°º˚]?\s*"
    rf"(?:(?P<min>\d+(?:[.,]\d+)?)\s*['′’]?\s*)?"
    rf"(?:(?P<sec>\d+(?:[.,]\d+)?)\s*(?:\"|″|”|''|′′)?\s*)?$",
    re.IGNORECASE,
)
_PLAIN = re.compile(rf"^{_NUMBER}$")
_MINUS = str.maketrans({"−": "-", "–": "-", "\u00a0": " "})  # minus signs of spreadsheets


def parse_coordinate(value: object, axis: Axis) -> float | None:
    """A coordinate in decimal degrees (negative south/west); None when blank; ValueError if not."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        return _finite(float(value))
    if not isinstance(value, str):
        raise ValueError("must be a number")
    text = value.translate(_MINUS).strip()
    if not text:
        return None
    if _PLAIN.match(text):
        return _finite(float(text.replace(",", ".")))
    body, sign = _hemisphere(text, axis)
    degrees = _degrees(body)
    if sign is not None and degrees < 0:
        raise ValueError(f"{value!r}: a minus sign and a hemisphere letter together")
    return _finite(degrees * (sign or 1))


def _hemisphere(text: str, axis: Axis) -> tuple[str, int | None]:
    """Strip a hemisphere letter (before or after the number); its sign, checked for the axis."""
    letter = None
    if m := _LEADING.match(text):
        letter, text = m.group(1), m.group(2)
    elif (m := _TRAILING.match(text)) and m.group(1):
        text, letter = m.group(1), m.group(2)
    if letter is None:
        return text, None
    letter_axis, sign = _HEMISPHERES[letter.upper()]
    if letter_axis != axis:
        what = "latitude" if axis == "lat" else "longitude"
        raise ValueError(f"{letter!r} is not a hemisphere of a {what}")
    return text.strip(), sign


def _degrees(text: str) -> float:
    """Degrees from `7.8`, `7,8°`, `7°47'58.3"`, `7°47.97'` or `7 47 58.3`."""
    m = _DMS.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a coordinate (e.g. -7.7995, 7.7995°S or 7°47'58.3\"S)")
    degrees = float(m.group("deg").replace(",", "."))
    minutes = float(m.group("min").replace(",", ".")) if m.group("min") else 0.0
    seconds = float(m.group("sec").replace(",", ".")) if m.group("sec") else 0.0
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"{text!r}: minutes and seconds must be below 60")
    if (m.group("min") or m.group("sec")) and not degrees.is_integer():
        raise ValueError(f"{text!r}: degrees with a fraction cannot have minutes")
    magnitude = abs(degrees) + minutes / 60 + seconds / 3600
    return -magnitude if text.strip().startswith("-") else magnitude


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number
