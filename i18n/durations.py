"""Durations that read the same to everyone: '4 dtk', '2 jam 5 mnt' / '4 s', '2 h 5 min'."""

from __future__ import annotations

import math
from datetime import timedelta

from i18n import Lang

# day, hour, minute, second
UNITS: dict[str, tuple[str, str, str, str]] = {
    "id": ("hari", "jam", "mnt", "dtk"),
    "en": ("d", "h", "min", "s"),
}
_SIZES = (86400, 3600, 60, 1)


def format_duration(value: timedelta | float, lang: Lang) -> str:
    """The biggest unit and, when not zero, the next one: '1 hari 3 jam', '3 min', '4 s'.

    A float is seconds; negative (and non-finite) spans count as zero; the rest is cut, not
    rounded.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    left = max(0, int(seconds)) if math.isfinite(seconds) else 0
    amounts = []
    for size in _SIZES:
        amount, left = divmod(left, size)
        amounts.append(amount)
    names = UNITS.get(lang, UNITS["en"])
    first = next((i for i, n in enumerate(amounts) if n), len(amounts) - 1)
    parts = [f"{amounts[first]} {names[first]}"]
    if first + 1 < len(amounts) and amounts[first + 1]:
        parts.append(f"{amounts[first + 1]} {names[first + 1]}")
    return " ".join(parts)
