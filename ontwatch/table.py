"""Plain-text tables and the ONT/area listings the CLI prints (`ontwatch list`, `ontwatch areas`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from monitor.areas import similar_areas

MAX_CELL = 40


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned; long text cut with '…'."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())  # no newline or tab may break the table (or forge a line)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def span(seconds: float) -> str:
    """A duration as `3 d 4 h`, `2 h 5 min` or `7 min`."""
    minutes = int(seconds) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def ont_rows(onts: Sequence[Mapping[str, Any]], now: datetime, tz: tzinfo) -> list[list[Any]]:
    """Rows of `ontwatch list`: id, name, area, status, rto, severity, since, for, ip."""
    rows = []
    for o in onts:
        since = _time(o.get("status_since"))
        rows.append(
            [
                o["id"],
                o.get("name", ""),
                o.get("area", ""),
                o["status"],
                o.get("rto_count", 0),
                o.get("severity", ""),
                since.astimezone(tz).strftime("%Y-%m-%d %H:%M") if since else "",
                span((now - since).total_seconds()) if since else "",
                o.get("ip", ""),
            ]
        )
    return rows


ONT_HEADERS = ["ID", "NAME", "AREA", "STATUS", "RTO", "SEVERITY", "SINCE", "FOR", "IP"]


def longest_down_first(onts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """OFF ONTs, the longest down first."""
    return sorted(onts, key=lambda o: o.get("status_since") or "")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def area_lines(onts: Sequence[Mapping[str, Any]]) -> list[str]:
    """`ontwatch areas`: a table of areas with counts, then the names that look like one area."""
    counts: dict[str, list[int]] = {}
    for o in onts:
        c = counts.setdefault(o.get("area", ""), [0, 0])
        c[0] += 1
        c[1] += o["status"] == "OFF"
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows = [[a or "(none)", total, off] for a, (total, off) in ordered]
    lines = [render(["AREA", "ONTS", "OFFLINE"], rows)]
    lines.append(f"{len(counts)} areas, {len(onts)} ONTs")
    groups = similar_areas({a: c[0] for a, c in counts.items()})
    if groups:
        lines.append("")
        lines.append("Names that look like one area written differently:")
    for g in groups:
        shown = ", ".join(f"{n} ({c})" for n, c in zip(g.names, g.counts, strict=True))
        lines.append(f"  {shown}: {g.why}")
        for name in g.merge:
            lines.append(f"    ontwatch areas rename {shlex.quote(name)} {shlex.quote(g.keep)}")
    return lines
