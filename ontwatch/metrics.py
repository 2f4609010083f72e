"""GET /metrics: Prometheus text built at scrape time from the live components."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.engine import Engine
from monitor.model import Severity, Status
from monitor.prober import Prober


@dataclass(frozen=True, slots=True)
class Scrape:
    """Values read asynchronously before the (synchronous) collector runs."""

    outbox_pending: int
    outbox_oldest_s: float
    outbox_by_state: dict[str, int]


class OntwatchCollector(Collector):
    """Yields the metric families of one scrape."""

    def __init__(
        self, engine: Engine, prober: Prober | None, delivery: Any, scrape: Scrape
    ) -> None:
        self.engine, self.prober, self.delivery, self.scrape = engine, prober, delivery, scrape

    def collect(self) -> Iterator[Any]:
        """The metric families."""
        states = list(self.engine.states.values())
        by_status = Counter(s.status.value for s in states)
        g = GaugeMetricFamily("ontwatch_onts", "ONTs by status", labels=["status"])
        for status in Status:
            g.add_metric([status.value], by_status.get(status.value, 0))
        yield g
        by_sev = Counter(s.severity.value for s in states)
        g = GaugeMetricFamily(
            "ontwatch_onts_by_severity", "ONTs by incident severity", labels=["severity"]
        )
        for sev in Severity:
            g.add_metric([sev.value], by_sev.get(sev.value, 0))
        yield g
        yield GaugeMetricFamily(
            "ontwatch_mass_outages", "Open mass outages (areas)", value=len(self.engine.outages)
        )
        c = CounterMetricFamily(
            "ontwatch_observations",
            "Observations applied, by source (rate() of source=push is pushes per second)",
            labels=["source"],
        )
        for source, n in sorted(self.engine.observed.items()):
            c.add_metric([source], n)
        yield c
        yield CounterMetricFamily(
            "ontwatch_commits", "Group commits written", value=self.engine.commits
        )
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
        if self.delivery is not None:
            yield CounterMetricFamily(
                "ontwatch_telegram_messages_sent",
                "Messages sent",
                value=self.delivery.sent_messages,
            )
            c = CounterMetricFamily(
                "ontwatch_telegram_errors", "Telegram errors by kind", labels=["kind"]
            )
            for kind in ("retry_after", "network", "forbidden", "bad_request", "invalid_token"):
                c.add_metric([kind], self.delivery.errors.get(kind, 0))
            yield c


def render(collector: OntwatchCollector) -> tuple[bytes, str]:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
