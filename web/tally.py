"""Running totals of the network by status and severity, kept from the commit feed.

The stream's `stats` frame follows every commit; counting all ONTs each time would cost
O(inventory) per flush (10,000 ONTs: tens of ms of a blocked event loop). The tally starts
from one snapshot and then applies each changed ONT: O(changed). Applying a state it already
holds changes nothing, so a commit seen twice (queued before the snapshot) counts once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from monitor.model import Ont, OntState, Severity, Status
from monitor.view import Counts


class Tally:
    """ONTs by status and by severity."""

    def __init__(self, pairs: Iterable[tuple[Ont, OntState]] = ()) -> None:
        self._by_id: dict[str, tuple[Status, Severity]] = {}
        self._status: Counter[Status] = Counter()
        self._severity: Counter[Severity] = Counter()
        for ont, state in pairs:
            self.put(ont.id, state)

    def put(self, ont_id: str, state: OntState) -> None:
        """The ONT is now in this state."""
        self.remove(ont_id)
        key = (state.status, state.severity)
        self._by_id[ont_id] = key
        self._status[key[0]] += 1
        self._severity[key[1]] += 1

    def remove(self, ont_id: str) -> None:
        """The ONT is gone (nothing happens when it was not counted)."""
        old = self._by_id.pop(ont_id, None)
        if old is not None:
            self._status[old[0]] -= 1
            self._severity[old[1]] -= 1

    def counts(self) -> Counts:
        """The totals (without the per-area numbers)."""
        return Counts(
            total=len(self._by_id),
            online=self._status[Status.ON],
            offline=self._status[Status.OFF],
            unknown=self._status[Status.UNKNOWN],
            by_severity={s.value: self._severity[s] for s in Severity},
        )
