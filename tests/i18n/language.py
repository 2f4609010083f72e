"""English words of the rules that must never show in an Indonesian text."""

from __future__ import annotations

import re

# Words (and phrases) the rules' English reasons and summaries used; ON, OFF, ONT, IP, rto,
# ok, area and status are the same in both languages and are not on the list.
FORBIDDEN = (
    "went",
    "unacknowledged",
    "acknowledged",
    "still",
    "recovered",
    "resolved",
    "problem",
    "escalated",
    "invalid IP address",
    "invalid",
    "mute ended",
    "nothing due",
    "nothing changed",
    "repeat",
    "reminder",
    "transitions",
    "changes",
    "stable",
    "flapping",
    "within",
    "for more than",
    "part of",
    "mass outage",
    "threshold",
    "limit",
    "above",
    "again",
    "after",
    "back",
    "down",
    "silent",
    "replies",
    "resumed",
    "held",
    "sweep",
    "known",
    "empty",
    "whole network",
    "the",
    "of",
    "for",
    "and",
    "in",
    "now",
    # probe agents ("agen probe" is the Indonesian name; "probe" itself is not on the list)
    "agent",
    "lost",
    "unobserved",
    "observed",
    "observation",
    "reach",
    "reaches",
    "cannot",
    "away",
    "older",
    "applied",
    "its",
    "their",
)
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in FORBIDDEN) + r")\b", re.IGNORECASE)
_UNIT = re.compile(r"\d+ (d|h|min|s)\b")  # English duration units: '4 s', '2 h 5 min'


def english_in(text: str) -> list[str]:
    """The forbidden English words (and English duration units) found in text."""
    return [m.group(0) for m in _PATTERN.finditer(text)] + [
        m.group(0) for m in _UNIT.finditer(text)
    ]
