"""GET /metrics: Prometheus text built at scrape time from the live components."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.agents import AgentStatus
from monitor.model import Severity, Status
from monitor.prober import Prober
from monitor.records import AGENT_STATES, agent_state
from monitor.view import EngineView
from ontwatch.leader import LEADER, Leadership


@dataclass(frozen=True, slots=True)
class Scrape:
    """Values read asynchronously before the (synchronous) collector runs."""

    outbox_pending: int
    outbox_oldest_s: float
    outbox_by_state: dict[str, int]
    loop_lag: Mapping[str, float] | None = None  # quantile ("0.5", "0.99", "1") -> seconds
    now: datetime | None = None  # the service's clock (ages of agents' last contact)
    leadership: Leadership | None = None  # who leads (docs/postgresql.md)


class EngineCounters(Protocol):
    """The engine's running totals (not its state: that is read through the view)."""

    observed: Mapping[str, int]
    commits: int


class OntwatchCollector(Collector):
    """Yields the metric families of one scrape."""

    def __init__(
        self,
        view: EngineView,
        counters: EngineCounters,
        prober: Prober | None,
        delivery: Any,
        scrape: Scrape,
        events: Any = None,
    ) -> None:
        self.view, self.counters, self.prober = view, counters, prober
        self.delivery, self.scrape, self.events = delivery, scrape, events

    def collect(self) -> Iterator[Any]:
        """The metric families."""
        counts = self.view.counts()
        by_status = {"ON": counts.online, "OFF": counts.offline, "UNKNOWN": counts.unknown}
        g = GaugeMetricFamily("ontwatch_onts", "ONTs by status", labels=["status"])
        for status in Status:
            g.add_metric([status.value], by_status[status.value])
        yield g
        g = GaugeMetricFamily(
            "ontwatch_onts_by_severity", "ONTs by incident severity", labels=["severity"]
        )
        for sev in Severity:
            g.add_metric([sev.value], counts.by_severity.get(sev.value, 0))
        yield g
        yield GaugeMetricFamily(
            "ontwatch_mass_outages", "Open mass outages (areas)", value=len(self.view.outages())
        )
        c = CounterMetricFamily(
            "ontwatch_observations",
            "Observations applied, by source (rate() of source=push is pushes per second)",
            labels=["source"],
        )
        for source, n in sorted(self.counters.observed.items()):
            c.add_metric([source], n)
        yield c
        yield CounterMetricFamily(
            "ontwatch_commits", "Group commits written", value=self.counters.commits
        )
        stale = getattr(self.counters, "stale", None)  # the engine's stale guard, when it has one
        if stale is not None:
            c = CounterMetricFamily(
                "ontwatch_stale_observations",
                "Observations not applied because the ONT had a newer one, by source",
                labels=["source"],
            )
            for source, n in sorted(stale.items()):
                c.add_metric([source], n)
            yield c
        agents = self.view.agents()
        if agents:
            yield from _agents(agents, self.scrape.now or datetime.now(UTC))
        if self.prober is not None:
            last = self.prober.last
            yield CounterMetricFamily(
                "ontwatch_sweeps", "ICMP sweeps run", value=self.prober.sweeps
            )
            yield CounterMetricFamily(
                "ontwatch_sweep_overruns",
                "Sweeps that took longer than the interval",
                value=self.prober.overruns,
            )
            yield CounterMetricFamily(
                "ontwatch_sweep_retries",
                "Second echoes sent at once to ONTs that just fell silent, and to the up to 10 canaries "
                "that ride with them (quick OFF confirmation)",
                value=self.prober.retries,
            )
            if last is not None:
                yield GaugeMetricFamily(
                    "ontwatch_sweep_duration_seconds",
                    "Duration of the last sweep",
                    value=last.duration,
                )
                yield GaugeMetricFamily(
                    "ontwatch_sweep_targets", "Addresses in the last sweep", value=last.targets
                )
                loss = last.silent / last.targets if last.targets else 0.0
                yield GaugeMetricFamily(
                    "ontwatch_sweep_loss_ratio",
                    "Share of silent addresses in the last sweep",
                    value=loss,
                )
                yield GaugeMetricFamily(
                    "ontwatch_sweep_retried",
                    "Addresses given a second echo in the last sweep",
                    value=last.retried,
                )
                yield GaugeMetricFamily(
                    "ontwatch_sweep_held",
                    "1 while the self-health gate holds ONT alerts",
                    value=int(last.held),
                )
        s = self.scrape
        yield GaugeMetricFamily(
            "ontwatch_outbox_pending",
            "Undelivered Telegram messages (rows)",
            value=s.outbox_pending,
        )
        yield GaugeMetricFamily(
            "ontwatch_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox row",
            value=s.outbox_oldest_s,
        )
        g = GaugeMetricFamily("ontwatch_outbox_rows", "Outbox rows by state", labels=["state"])
        for state, n in sorted(s.outbox_by_state.items()):
            g.add_metric([state], n)
        yield g
        if s.loop_lag:
            g = GaugeMetricFamily(
                "ontwatch_loop_lag_seconds",
                "Event-loop lag of a 0.25 s heartbeat over the last ~2 minutes, by quantile",
                labels=["quantile"],
            )
            for q, lag in s.loop_lag.items():
                g.add_metric([q], lag)
            yield g
        if self.events is not None:
            yield from _event_stream(self.events)
        if s.leadership is not None:
            yield from _leadership(s.leadership)
        if self.delivery is not None:
            yield CounterMetricFamily(
                "ontwatch_telegram_messages_sent",
                "Messages sent",
                value=self.delivery.sent_messages,
            )
            yield CounterMetricFamily(
                "ontwatch_outbox_resent_after_takeover",
                "Outbox rows sent again because an earlier run (an older leader) had claimed "
                "them and not marked them sent: at most one duplicate each per takeover",
                value=getattr(self.delivery, "resent_after_takeover", 0),
            )
            c = CounterMetricFamily(
                "ontwatch_telegram_errors", "Telegram errors by kind", labels=["kind"]
            )
            for kind in ("retry_after", "network", "forbidden", "bad_request", "invalid_token"):
                c.add_metric([kind], self.delivery.errors.get(kind, 0))
            yield c


def _leadership(who: Leadership) -> Iterator[Any]:
    """ontwatch_leader{instance} 1 on the leader, 0 on a standby; since when the leader leads
    (Unix time it took the lease; with SQLite, when the service started)."""
    g = GaugeMetricFamily(
        "ontwatch_leader",
        "1 while this instance is the leader (writes, probes, delivers), 0 on a standby",
        labels=["instance"],
    )
    g.add_metric([who.instance], 1 if who.role == LEADER else 0)
    yield g
    if who.since is not None:
        yield GaugeMetricFamily(
            "ontwatch_leader_since_seconds",
            "Unix time the current leader took the lease (SQLite: the service's start)",
            value=who.since.timestamp(),
        )


def _event_stream(hub: Any) -> Iterator[Any]:
    yield GaugeMetricFamily(
        "ontwatch_events_clients", "Connected event-stream clients", value=len(hub.clients)
    )
    yield CounterMetricFamily(
        "ontwatch_events_dropped_clients",
        "Event-stream clients cut off because they fell behind",
        value=hub.dropped,
    )
    yield CounterMetricFamily(
        "ontwatch_events_frames_sent", "Event-stream frames written", value=hub.frames_sent
    )


def _agents(agents: Sequence[AgentStatus], now: datetime) -> Iterator[Any]:
    """Per probe agent (label agent): whether it lives, what it sweeps, how it reports.

    Only configured agents appear, so a single-site install exposes none of these.
    """
    label = ["agent"]
    up = GaugeMetricFamily(
        "ontwatch_agent_up",
        "1 while the agent's last contact is within its lost window",
        labels=label,
    )
    state = GaugeMetricFamily(
        "ontwatch_agent_state", "1 for the agent's current state", labels=["agent", "state"]
    )
    onts = GaugeMetricFamily("ontwatch_agent_onts", "ONTs assigned to the agent", labels=label)
    contact = GaugeMetricFamily(
        "ontwatch_agent_last_contact_seconds", "Seconds since the agent's last report", labels=label
    )
    sweep = GaugeMetricFamily(
        "ontwatch_agent_sweep_seconds", "Duration of the agent's last sweep", labels=label
    )
    held = GaugeMetricFamily(
        "ontwatch_agent_sweep_held",
        "1 while the agent's self-health gate holds (it cannot reach its ONTs)",
        labels=label,
    )
    queue = GaugeMetricFamily(
        "ontwatch_agent_queue_depth", "Reports waiting in the agent's queue", labels=label
    )
    skew = GaugeMetricFamily(
        "ontwatch_agent_skew_seconds", "The centre's clock minus the agent's", labels=label
    )
    totals = {
        "accepted": CounterMetricFamily(
            "ontwatch_agent_accepted", "Agent observations applied", labels=label
        ),
        "stale": CounterMetricFamily(
            "ontwatch_agent_stale",
            "Agent observations not applied: older than the ONT's last",
            labels=label,
        ),
        "refused": CounterMetricFamily(
            "ontwatch_agent_refused",
            "Agent observations refused: ONTs not assigned to the agent",
            labels=label,
        ),
        "reports": CounterMetricFamily("ontwatch_agent_reports", "Reports taken", labels=label),
        "dropped": CounterMetricFamily(
            "ontwatch_agent_dropped",
            "Reports the agent dropped from its full queue (as it says)",
            labels=label,
        ),
    }
    for a in agents:
        name = [a.name]
        word = agent_state(a)
        if word != "revoked":  # not a target any more: no `up` to alert on
            up.add_metric(name, int(a.last_contact is not None and word != "lost"))
        for each in AGENT_STATES:
            state.add_metric([a.name, each], int(each == word))
        onts.add_metric(name, a.onts)
        if a.last_contact is not None:
            contact.add_metric(name, max(0.0, (now - a.last_contact).total_seconds()))
        if a.sweep is not None:
            sweep.add_metric(name, a.sweep.duration)
            held.add_metric(name, int(a.sweep.held))
        queue.add_metric(name, a.queue_depth)
        skew.add_metric(name, a.skew_s)
        for field, family in totals.items():
            family.add_metric(name, getattr(a, field))
    yield from (up, state, onts, contact, sweep, held, queue, skew, *totals.values())


def render(collector: OntwatchCollector) -> tuple[bytes, str]:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
