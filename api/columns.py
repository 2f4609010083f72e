"""The import's column names: the documented alias table (Indonesian and English).

A header is matched case-insensitively, with spaces, underscores, hyphens and dots treated
alike (`ID Pelanggan`, `id_pelanggan` and `id-pelanggan` are one name). For each field the
aliases are listed in order of preference: when a file has two columns for one field, the
first alias in this table wins and the other column is reported as not used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# field -> aliases, most preferred first. The README and docs/operations.md show this table.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ont id", "id ont", "ont", "kode ont", "no ont"),
    "name": ("name", "nama", "nama ont", "label"),
    "customer_id": (
        "customer id",
        "id pelanggan",
        "pelanggan",
        "kode pelanggan",
        "no pelanggan",
        "nomor pelanggan",
        "customer",
    ),
    "location": ("location", "lokasi", "alamat", "address", "keterangan"),
    "lat": ("lat", "latitude", "lintang"),
    "lon": ("lon", "longitude", "lng", "long", "bujur"),
    "ip": ("ip", "alamat ip", "ip address", "ipaddress", "ip ont", "ip addr"),
    "area": ("area", "wilayah", "kelurahan", "desa", "region", "zona", "odp"),
    "status": ("status", "state", "kondisi"),
    "rto_count": ("rto count", "rto", "jumlah rto"),
    "last_on": ("last on", "terakhir on", "terakhir online", "last online"),
    "status_since": ("status since", "since", "sejak", "down since"),
}

_SEPARATORS = re.compile(r"[\s_\-.]+")
_BY_ALIAS: dict[str, tuple[str, int]] = {
    alias: (name, rank) for name, aliases in ALIASES.items() for rank, alias in enumerate(aliases)
}


def normalize(header: object) -> str:
    """A header as the alias table spells it: lower case, one space between words."""
    text = str(header).replace("\ufeff", "") if header is not None else ""
    return _SEPARATORS.sub(" ", text).strip().casefold()


def field_for(header: object) -> str | None:
    """The ONT field a header names, or None when it is not in the table."""
    hit = _BY_ALIAS.get(normalize(header))
    return hit[0] if hit else None


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which header gives which field, and which headers are not used (with why)."""

    fields: dict[str, str]  # field -> header as written in the file
    unused: dict[str, str] = field(default_factory=dict)  # header -> why it is not used

    @classmethod
    def of(cls, headers: Iterable[object]) -> ColumnMap:
        """Match headers against the alias table; the most preferred alias wins a field."""
        best: dict[str, tuple[int, int, str]] = {}
        unused: dict[str, str] = {}
        for position, header in enumerate(headers):
            shown = str(header) if header is not None else ""
            hit = _BY_ALIAS.get(normalize(header))
            if hit is None:
                if shown.strip():
                    unused[shown] = "not a known column"
                continue
            name, rank = hit
            current = best.get(name)
            if current is None or (rank, position) < current[:2]:
                if current is not None:
                    unused[current[2]] = f"{name} is taken from column {shown!r}"
                best[name] = (rank, position, shown)
            else:
                unused[shown] = f"{name} is taken from column {current[2]!r}"
        return cls({name: hit[2] for name, hit in best.items()}, unused)

    def row(self, raw: Mapping[Any, Any]) -> dict[str, Any]:
        """One row keyed by field name."""
        return {name: raw.get(header) for name, header in self.fields.items() if header in raw}

    def header(self, name: str) -> str:
        """The file's header for a field (for messages), or the field name itself."""
        return self.fields.get(name, name)

    def describe(self) -> list[str]:
        """Report lines: which column gives what, and every column not used."""
        used = ", ".join(f"{h} → {n}" for n, h in self.fields.items())
        lines = [f"columns used: {used}"] if used else []
        lines.extend(f"column {h!r} not used: {why}" for h, why in self.unused.items())
        return lines


def alias_table_markdown() -> str:
    """The alias table as Markdown, as the docs show it."""
    lines = ["| field | column names accepted (any case; `_`, `-`, `.` or space between words) |"]
    lines.append("|---|---|")
    for name, aliases in ALIASES.items():
        lines.append(f"| `{name}` | " + ", ".join(f"`{a}`" for a in aliases) + " |")
    return "\n".join(lines)
