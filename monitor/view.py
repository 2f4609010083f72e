"""The read side of the engine: a read-only view of the live inventory and state.

Pages, the event stream, the bot, metrics and the API read live state through this view
(and stored history through storage's queries); nothing outside the engine touches its
dictionaries. Every method returns new containers or frozen values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.feed import Feed
from monitor.model import Ont, OntState, Severity, Status, Thresholds, id_sort_key
from monitor.outages import MassOutage
from monitor.ports import Mute

if TYPE_CHECKING:
    from monitor.agents import AgentStatus
    from monitor.engine import Engine


@dataclass(frozen=True, slots=True)
class AreaCounts:
    """One area's numbers."""

    area: str
    total: int = 0
    online: int = 0
    offline: int = 0
    unknown: int = 0
    critical: int = 0


@dataclass(frozen=True, slots=True)
class Counts:
    """The network's numbers: by status, by severity, by area (area name order)."""

    total: int
    online: int
    offline: int
    unknown: int
    by_severity: dict[str, int]
    by_area: tuple[AreaCounts, ...] = field(default=())


class EngineView:
    """Read-only access to the engine's live inventory, state, mutes and mass outages."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def feed(self) -> Feed:
        """The commit feed (subscribe to hear every durable change)."""
        return self._engine.feed

    @property
    def thresholds(self) -> Thresholds:
        """The alert thresholds in force."""
        return self._engine.thresholds

    def __len__(self) -> int:
        return len(self._engine.onts)

    def __contains__(self, ont_id: object) -> bool:
        return ont_id in self._engine.onts

    def get(self, ont_id: str) -> tuple[Ont, OntState] | None:
        """Inventory and state of one ONT, or None."""
        return self._engine.get(ont_id)

    def agents(self) -> list[AgentStatus]:
        """Every probe agent's status (name order); empty when no agent is configured."""
        board = self._engine.agents
        return list(board.statuses()) if board is not None else []

    def ont(self, ont_id: str) -> Ont | None:
        """The inventory record of one ONT, or None."""
        return self._engine.onts.get(ont_id)

    def items(self) -> list[tuple[Ont, OntState]]:
        """Every ONT with its state, in id order."""
        pairs = self._engine.items()
        pairs.sort(key=lambda p: id_sort_key(p[0].id))
        return pairs

    def onts(self) -> dict[str, Ont]:
        """A copy of the inventory by id."""
        return dict(self._engine.onts)

    def ont_ids(self) -> list[str]:
        """Every ONT id, in id order."""
        return sorted(self._engine.onts, key=id_sort_key)

    def areas(self) -> list[str]:
        """The named areas, sorted."""
        return sorted({o.area for o in self._engine.onts.values() if o.area})

    def offline(self) -> list[tuple[Ont, OntState]]:
        """ONTs that are OFF, longest down first."""
        pairs = [(o, s) for o, s in self._engine.items() if s.status is Status.OFF]
        pairs.sort(key=lambda p: (_since_key(p[1]), id_sort_key(p[0].id)))
        return pairs

    def outages(self) -> list[MassOutage]:
        """Open mass outages, oldest first."""
        return sorted(self._engine.outages.values(), key=lambda o: (o.started_at, o.area))

    def mutes(self) -> list[Mute]:
        """Silences in force or not yet expired by the tick, by target."""
        return sorted(self._engine.mutes.values(), key=lambda m: m.target)

    def mute(self, target: str) -> Mute | None:
        """The silence on one target ("ont:<id>" or "area:<name>"), or None."""
        return self._engine.mutes.get(target)

    def is_muted(self, ont: Ont, now: datetime) -> bool:
        """Whether the ONT or its area is silenced at now."""
        return self._engine.is_muted(ont, now)

    def counts(self) -> Counts:
        """Totals by status and severity, and per area."""
        by_status: Counter[Status] = Counter()
        by_severity: Counter[str] = Counter()
        areas: dict[str, Counter[str]] = {}
        for ont, state in self._engine.items():
            by_status[state.status] += 1
            by_severity[state.severity.value] += 1
            area = areas.setdefault(ont.area, Counter())
            area["total"] += 1
            area[state.status.value] += 1
            if state.severity is Severity.CRITICAL:
                area["critical"] += 1
        return Counts(
            total=sum(by_status.values()),
            online=by_status[Status.ON],
            offline=by_status[Status.OFF],
            unknown=by_status[Status.UNKNOWN],
            by_severity={s.value: by_severity[s.value] for s in Severity},
            by_area=tuple(
                AreaCounts(a, c["total"], c["ON"], c["OFF"], c["UNKNOWN"], c["critical"])
                for a, c in sorted(areas.items())
            ),
        )


def _since_key(state: OntState) -> tuple[int, float]:
    since = state.status_since or state.last_seen
    return (0, since.timestamp()) if since is not None else (1, 0.0)
