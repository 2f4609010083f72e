"""Server-sent event frames, the ring of recent ones, and the JSON each frame type carries.

A frame is written as `id: N`, `event: TYPE`, `data: <one JSON line>`. Frames whose data
hold texts (ONT reasons, notification lines) are encoded per language, on first use, and
the encoding is kept; every other frame is encoded once for all.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from i18n import Lang
from i18n.notices import render as render_notice
from monitor.agents import AgentStatus
from monitor.model import Ont, OntState
from monitor.outages import MassOutage
from monitor.ports import Notification
from monitor.records import agent_json, iso, notification_json, ont_json
from monitor.view import Counts

log = logging.getLogger(__name__)
Payload = Callable[[Lang], Any]


def encode(frame_id: int, event: str, data: Any, *, retry_ms: int | None = None) -> bytes:
    """The wire form of one frame."""
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"{head}id: {frame_id}\nevent: {event}\ndata: {line}\n\n".encode()


class Frame:
    """One frame: its id, type and data (a value, or a function of the language)."""

    __slots__ = ("_data", "_wire", "event", "id", "size")

    def __init__(self, frame_id: int, event: str, data: Any, lang: Lang) -> None:
        self.id = frame_id
        self.event = event
        self._data = data
        self._wire: dict[Lang | None, bytes] = {}
        self.size = len(self.wire(lang))  # what the ring counts (the service language)

    def wire(self, lang: Lang) -> bytes:
        """The frame's bytes for a client reading in lang."""
        key: Lang | None = lang if callable(self._data) else None
        cached = self._wire.get(key)
        if cached is None:
            data = self._data(lang) if callable(self._data) else self._data
            cached = self._wire[key] = encode(self.id, self.event, data)
        return cached


class Burst:
    """The frames of one flush, handed to every client as one write (joined once per language)."""

    __slots__ = ("_wire", "frames")

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = tuple(frames)
        self._wire: dict[Lang, bytes] = {}

    def wire(self, lang: Lang) -> bytes:
        """All the frames' bytes for a client reading in lang."""
        cached = self._wire.get(lang)
        if cached is None:
            cached = self._wire[lang] = b"".join(f.wire(lang) for f in self.frames)
        return cached


class Ring:
    """The most recent frames, bounded by count and by bytes, for Last-Event-ID resume."""

    def __init__(self, max_frames: int, max_bytes: int, last_id: int) -> None:
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.frames: deque[Frame] = deque()
        self.bytes = 0
        self.last_id = last_id  # the id of the newest frame ever added

    def append(self, frame: Frame) -> None:
        """Keep frame (its id must follow the last one), forgetting the oldest past the bounds."""
        if frame.id != self.last_id + 1:
            raise ValueError(f"frame id {frame.id} does not follow {self.last_id}")
        self.frames.append(frame)
        self.bytes += frame.size
        self.last_id = frame.id
        while self.frames and (len(self.frames) > self.max_frames or self.bytes > self.max_bytes):
            self.bytes -= self.frames.popleft().size

    def after(self, last_id: int) -> list[Frame] | None:
        """Every frame after last_id, oldest first; None when some of them are forgotten
        (or last_id was never given out)."""
        if last_id > self.last_id:
            return None
        if last_id == self.last_id:
            return []
        if not self.frames or last_id < self.frames[0].id - 1:
            return None
        return list(itertools.islice(self.frames, last_id - self.frames[0].id + 1, None))


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """items in slices of at most size."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def onts_data(pairs: Sequence[tuple[Ont, OntState]], deleted: Sequence[str]) -> Payload:
    """The `onts` frame: the ONTs' latest states (the GET /api/onts shape) and removed ids."""
    pairs, deleted = tuple(pairs), tuple(deleted)
    return lambda lang: {
        "onts": [ont_json(o, s, lang) for o, s in pairs],
        "deleted": list(deleted),
    }


def notifications_data(notes: Sequence[Notification], more: int = 0) -> Payload:
    """The `notifications` frame: stored notifications, oldest first, with their text line;
    `more` counts those of the same flush that were stored but not sent (see NOTICES_PER_FLUSH)."""
    notes = tuple(notes)
    return lambda lang: {
        "items": [
            {
                **notification_json(n, lang),
                "text": notice_text(n, lang),
            }
            for n in notes
        ],
        "more": more,
    }


def notice_text(n: Notification, lang: Lang) -> str:
    """The notification's line in lang (i18n), else the stored message."""
    try:
        return render_notice(n.kind, n.severity, n.payload, lang)
    except (KeyError, ValueError, TypeError, IndexError):
        log.exception("notification %d: no %s text; sending the stored message", n.id, lang)
        return n.message


def read_data(ids: Sequence[int] | None, unread: int) -> dict[str, Any]:
    """The `read` frame: which notifications were marked read (None = all) and the unread."""
    return {"ids": None if ids is None else list(ids), "unread": unread}


def stats_data(counts: Counts, unread: int, outages: Sequence[MassOutage]) -> dict[str, Any]:
    """The `stats` frame: the dashboard's numbers."""
    return {
        "total": counts.total,
        "online": counts.online,
        "offline": counts.offline,
        "unknown": counts.unknown,
        "unread": unread,
        "by_severity": {k: counts.by_severity.get(k, 0) for k in ("ok", "warning", "critical")},
        "outages": [
            {
                "area": o.area,
                "count": len(o.members),
                "started_at": iso(o.started_at),
                "acked": o.acked_at is not None,
            }
            for o in outages
        ],
    }


def agents_data(statuses: Sequence[AgentStatus]) -> dict[str, Any]:
    """The `agents` frame: every probe agent (monitor.records.agent_json), in name order."""
    return {"agents": [agent_json(a) for a in statuses]}
