"""Area hygiene: names that look like one area written differently. Pure functions.

An area (the kelurahan, an ODP, an OLT port) groups ONTs for mass-outage detection and for
`/subscribe AREA`; one kelurahan spelt three ways is three small areas, and a mass outage
in it may never reach the threshold. Two names are suspects when they are equal but for
case and spacing, when one is the other with a `-1`/` 2` suffix, or when their letters are
one or two edits apart (two only for names of eight letters or more). Names that differ
only in their digits (`ODP-01`, `ODP-02`) are a numbered series, not a misspelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SPACING = re.compile(r"[\s_\-.]+")
_SUFFIX = re.compile(r"^(?P<base>.*?\D)[\s_\-.]*\d{1,2}$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class SimilarAreas:
    """A group of area names that look like one area, with the name to keep."""

    names: tuple[str, ...]  # most ONTs first
    counts: tuple[int, ...]
    why: str  # "case or spacing" | "numbered suffix" | "one letter apart" | "two letters apart"

    @property
    def keep(self) -> str:
        """The suggested name: the spelling with the most ONTs."""
        return self.names[0]

    @property
    def merge(self) -> tuple[str, ...]:
        """The names to rename into `keep`."""
        return self.names[1:]


def spacing_key(name: str) -> str:
    """A name without case and with one kind of separator: `bumijo 1` for `BUMIJO_1`."""
    return _SPACING.sub(" ", name).strip().casefold()


def suffix_base(name: str) -> str | None:
    """`Bumijo` for `Bumijo-1` or `Bumijo 2`; None when there is no numbered suffix."""
    m = _SUFFIX.match(name.strip())
    return m.group("base").strip(" -_.") if m else None


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance (swaps count as one), cut off above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return prev[-1]


def why_similar(a: str, b: str) -> str | None:
    """Why two area names look like one area, or None when they do not."""
    if a == b:
        return None
    ka, kb = spacing_key(a), spacing_key(b)
    if ka == kb:
        return "case or spacing"
    base_a, base_b = suffix_base(a), suffix_base(b)
    if (base_a and spacing_key(base_a) == kb) or (base_b and spacing_key(base_b) == ka):
        return "numbered suffix"
    if _DIGITS.sub("", ka) == _DIGITS.sub("", kb):
        return None  # a numbered series: ODP-01, ODP-02
    letters_a, letters_b = ka.replace(" ", ""), kb.replace(" ", "")
    shorter = min(len(letters_a), len(letters_b))
    if shorter < 5:
        return None
    distance = edit_distance(letters_a, letters_b, limit=2 if shorter >= 8 else 1)
    if distance == 1:
        return "one letter apart"
    if distance == 2 and shorter >= 8:
        return "two letters apart"
    return None


def similar_areas(counts: Mapping[str, int]) -> list[SimilarAreas]:
    """Groups of names that look like one area, biggest group first; blank names are ignored."""
    names = sorted((n for n in counts if n.strip()), key=lambda n: (-counts[n], n))
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    links: list[tuple[str, str]] = []  # (name, why)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            why = why_similar(a, b)
            if why is not None:
                links.append((b, why))
                ra, rb = root(a), root(b)
                if ra != rb:  # the root is always the name with the most ONTs
                    parent[max(ra, rb, key=names.index)] = min(ra, rb, key=names.index)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    reasons: dict[str, str] = {}
    for name, why in links:
        r = root(name)
        reasons[r] = max(reasons.get(r, why), why, key=_ORDER.index)
    out = [
        SimilarAreas(tuple(g), tuple(counts[n] for n in g), reasons[r])
        for r, g in groups.items()
        if len(g) > 1
    ]
    return sorted(out, key=lambda s: (-sum(s.counts), s.keep))


# Least certain last: a group is described by its least certain link.
_ORDER = ["case or spacing", "numbered suffix", "one letter apart", "two letters apart"]


def describe(group: SimilarAreas) -> str:
    """One report line: `Sorosutan (10), Surosutan (1): one letter apart`."""
    shown = ", ".join(f"{n} ({c})" for n, c in zip(group.names, group.counts, strict=True))
    return f"{shown}: {group.why}"
