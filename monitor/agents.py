"""Probe agents at the centre: who they are, what they are assigned, whether they live.

The desk (AgentDesk) is the centre's one place for agents: it answers assignments, takes
reports (through the engine's one ingest path), and turns an agent's silence into one
"agent lost" alert with its ONTs UNKNOWN — never OFFs, never a mass outage. Contract with
the agent process: docs/agents.md. Pure decisions (assignment, liveness) are functions of
their inputs and `now`, table-tested in tests/monitor/test_agents.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """An agent as configured centrally (storage/agents.py keeps it)."""

    name: str
    areas: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()  # CIDR texts, as given
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class SweepStats:
    """What an agent said of its latest sweep."""

    at: datetime
    duration: float
    targets: int
    replied: int
    silent: int
    retried: int = 0
    held: bool = False


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One report, parsed and checked by api/agents.py (times already as datetimes)."""

    epoch: str
    seq: int
    sent_at: datetime
    interval: float
    assignment: str
    full: bool
    sweep: SweepStats | None
    queue_depth: int
    queue_oldest: datetime | None
    dropped: int
    obs: Sequence[tuple[str, datetime, int]]  # (ont id, observed at, lost)


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """What the centre did with a report (the JSON answer's fields)."""

    accepted: int
    stale: int
    refused: int
    duplicate: bool
    want_full: bool
    assignment: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """The ONTs one agent sweeps, with the version the agent follows (an ETag)."""

    agent: str
    version: str
    targets: tuple[tuple[str, str], ...]  # (ont id, ip) in id order
    refresh_s: int = 300
    down_after: int = 2
    critical_rto: int = 3


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent as the pages, the bot, /metrics and `ontwatch agents` show it."""

    name: str
    onts: int  # ONTs assigned now
    revoked: bool = False
    last_contact: datetime | None = None
    interval: float | None = None
    lost: bool = False
    lost_since: datetime | None = None
    sweep: SweepStats | None = None
    queue_depth: int = 0
    queue_oldest: datetime | None = None
    dropped: int = 0
    skew_s: float = 0.0
    accepted: int = 0  # observations applied since the centre started
    stale: int = 0
    refused: int = 0
    reports: int = 0
    areas: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


@dataclass
class AgentDesk:
    """The centre's agents: assignments, reports, liveness. Implemented in this module."""

    configs: Mapping[str, AgentConfig] = field(default_factory=dict)
