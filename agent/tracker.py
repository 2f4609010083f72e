"""What the agent sends: per-ONT lost counts from each round, and which of them are news.

Pure (no I/O, no clock): the runner hands it each round's echoes by ONT and gets back the
observations of one report. The centre applies a lost count as it is, so sending only
changes is safe: a quiet network costs a small refresh slice per sweep ("still the same",
every ONT once per refresh_s), and a full report re-states everything when the centre's
picture may be incomplete (start, the centre asks, the assignment changed, the queue
dropped reports). Table-tested in tests/agent/test_tracker.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.rounds import Echo

Obs = tuple[str, datetime, int]  # (ont id, observed at, lost)
MAX_LOST = 2**31 - 1  # the centre's bound on a lost count (monitor.engine.MAX_RTO)


@dataclass(frozen=True, slots=True)
class Step:
    """One report's observations: changes first (time order per ONT), then refreshes."""

    obs: tuple[Obs, ...]
    full: bool
    changes: int
    refreshed: int


@dataclass
class Tracker:
    """Consecutive lost counts per ONT and the rules for what to send."""

    interval: float = 5.0
    refresh_s: float = 300.0
    down_after: int = 2
    critical_rto: int = 3
    lost: dict[str, int] = field(default_factory=dict)
    full_due: bool = True  # the first report re-states everything
    _order: list[str] = field(default_factory=list)  # assigned ids, sorted: the refresh ring
    _assigned: frozenset[str] = frozenset()
    _cursor: int = 0
    _credit: float = 0.0  # ONTs of the ring due but not yet sent (a fraction)

    @property
    def climb(self) -> int:
        """Lost counts up to this are each sent: the centre's thresholds see every step."""
        return max(self.down_after, self.critical_rto)

    def assign(
        self,
        ont_ids: Sequence[str],
        *,
        refresh_s: float | None = None,
        down_after: int | None = None,
        critical_rto: int | None = None,
        changed: bool = True,
    ) -> None:
        """Follow a new assignment; counts of ONTs no longer assigned are forgotten."""
        if refresh_s is not None:
            self.refresh_s = refresh_s
        if down_after is not None:
            self.down_after = down_after
        if critical_rto is not None:
            self.critical_rto = critical_rto
        keep = set(ont_ids)
        self.lost = {k: v for k, v in self.lost.items() if k in keep}
        self._order = sorted(keep)
        self._assigned = frozenset(keep)
        self._cursor = self._cursor % len(self._order) if self._order else 0
        if changed:
            self.full_due = True

    def want_full(self) -> None:
        """The next report carries every ONT (the centre asked, or reports were dropped)."""
        self.full_due = True

    def snapshot(self) -> dict[str, int]:
        """The ONTs with lost echoes and their counts (kept over a graceful restart, so a
        long-dark ONT is not reported as newly lost with count 1 after an upgrade)."""
        return {k: v for k, v in self.lost.items() if v}

    def restore(self, counts: Mapping[str, int]) -> None:
        """Take counts kept by snapshot() for ONTs assigned now; the others stay unknown."""
        assigned = set(self._order)
        for ont_id, count in counts.items():
            if ont_id in assigned and isinstance(count, int) and 0 < count <= MAX_LOST:
                self.lost[ont_id] = count

    def answered_last(self, ont_id: str) -> bool:
        """Whether the ONT's latest echo was answered (unknown counts as answered)."""
        return self.lost.get(ont_id, 0) == 0

    def per_sweep(self) -> float:
        """ONTs per sweep in the refresh ring so that each comes once per refresh_s."""
        sweeps = max(1.0, self.refresh_s / self.interval) if self.interval > 0 else 1.0
        return len(self._order) / sweeps

    def step(self, echoes: Mapping[str, Sequence[Echo]], *, held: bool = False) -> Step:
        """Take one round's echoes by ONT id; the observations to send for it.

        Held (the self-health gate): lost echoes are ignored — neither counted nor sent —
        while answered ones still count, and a due full report waits for a round that is
        not held (a full report of a blind agent would only state what it cannot see).
        """
        changes: list[Obs] = []
        latest: dict[str, datetime] = {}
        assigned = self._assigned
        for ont_id, seen in echoes.items():
            if ont_id not in assigned:  # swept under an assignment replaced since
                continue
            for echo in seen:
                if held and not echo.replied:
                    continue
                latest[ont_id] = echo.at
                ob = self._count(ont_id, echo)
                if ob is not None:
                    changes.append(ob)
        full = self.full_due and not held
        sent = {ob[0] for ob in changes}
        extra = self._order if full else self._refresh_ring()
        refresh = [
            (ont_id, latest[ont_id], self.lost[ont_id])
            for ont_id in extra
            if ont_id in latest and ont_id not in sent
        ]
        if full:
            self.full_due = False
        return Step(tuple(changes + refresh), full, len(changes), len(refresh))

    def _count(self, ont_id: str, echo: Echo) -> Obs | None:
        """Apply one echo to the ONT's count; the observation if it is news."""
        before = self.lost.get(ont_id)
        after = 0 if echo.replied else min((before or 0) + 1, MAX_LOST)
        self.lost[ont_id] = after
        if before is None or (before == 0) != (after == 0):
            return (ont_id, echo.at, after)
        if after != before and after <= self.climb:
            return (ont_id, echo.at, after)
        return None

    def _refresh_ring(self) -> list[str]:
        """The next slice of the ring: every ONT once per refresh_s, spread over the sweeps
        (a fraction of an ONT per sweep is carried over, so 10 ONTs at 60 sweeps per refresh
        go one every sixth sweep, not one every sweep)."""
        self._credit += self.per_sweep()
        n = min(int(self._credit), len(self._order))
        if not n:
            return []
        self._credit -= n
        start = self._cursor
        ids = [self._order[(start + i) % len(self._order)] for i in range(n)]
        self._cursor = (start + n) % len(self._order)
        return ids
