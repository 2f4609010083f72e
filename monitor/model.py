"""Domain types: the ONT, what is observed of it, its live state, incidents and events."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeAlias


class Status(enum.StrEnum):
    """Reachability of an ONT as the rules see it."""

    ON = "ON"
    OFF = "OFF"
    UNKNOWN = "UNKNOWN"


class Severity(enum.StrEnum):
    """Severity of an incident; OK means no incident."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order for comparisons: ok < warning < critical."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Source(enum.StrEnum):
    """Where an observation came from."""

    PUSH = "push"
    PROBE = "probe"
    SIMULATE = "simulate"
    IMPORT = "import"
    AGENT = "agent"  # a probe agent's sweep in a POP (docs/agents.md)

    @property
    def probed(self) -> bool:
        """Echoes, not reports: the central prober's or an agent's."""
        return self in (Source.PROBE, Source.AGENT)


class EventKind(enum.StrEnum):
    """What happened to an incident (or to the inventory)."""

    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    INVALID_IP = "invalid_ip"
    FLAPPING = "flapping"
    FLAPPING_ENDED = "flapping_ended"
    MASS_OUTAGE = "mass_outage"
    MASS_OUTAGE_RESOLVED = "mass_outage_resolved"
    MONITOR_OFFLINE = "monitor_offline"
    MONITOR_ONLINE = "monitor_online"
    AGENT_LOST = "agent_lost"  # a probe agent went silent: its ONTs are UNKNOWN
    AGENT_BACK = "agent_back"


class ReasonCode(enum.StrEnum):
    """Why the rules decided what they did; texts are rendered from the code by i18n/."""

    WENT_OFF = "went_off"
    RTO_AT_THRESHOLD = "rto_at_threshold"  # rto, threshold
    RTO_ABOVE_ZERO = "rto_above_zero"  # rto
    OFF_LONGER_THAN = "off_longer_than"  # seconds
    MASS_OUTAGE_MEMBER = "mass_outage_member"  # area
    RECOVERED = "recovered"  # ON with rto 0
    NO_PROBLEM = "no_problem"  # no status known and no incident
    UNCHANGED = "unchanged"  # a repeat: nothing changed
    INVALID_IP = "invalid_ip"  # ip ("" when empty)
    FLAPPING = "flapping"  # transitions, window_s
    FLAPPING_ENDED = "flapping_ended"  # window_s, status
    REMINDER = "reminder"  # severity, open_s, cause (a Reason)
    MUTE_ENDED = "mute_ended"  # severity, cause (a Reason)
    MASS_OUTAGE = "mass_outage"  # count, size, window_s
    MASS_OUTAGE_ENDED = "mass_outage_ended"  # back, members, still_off
    AREA_REMINDER = "area_reminder"  # down, size, open_s
    AREA_STILL_DOWN = "area_still_down"  # down
    BELOW_THRESHOLD = "below_threshold"  # count
    NO_AREA = "no_area"
    NOTHING_DUE = "nothing_due"
    SEVERAL = "several"  # parts (a tuple of Reasons)
    MONITOR_BLIND = "monitor_blind"  # silent, targets
    MONITOR_SEES = "monitor_sees"  # replied, targets
    AGENT_LOST = "agent_lost"  # agent, onts, silent_s
    AGENT_BACK = "agent_back"  # agent, onts, away_s
    AGENT_BLIND = "agent_blind"  # agent, silent, targets: the agent's own uplink to its ONTs
    AGENT_SEES = "agent_sees"  # agent, replied, targets
    UNOBSERVED = "unobserved"  # agent: its agent is lost, so the ONT is UNKNOWN, not OFF
    STALE = "stale"  # an observation older than the state's last one: not applied
    LEGACY = "legacy"  # text: an English reason stored before reasons were codes


ParamValue: TypeAlias = "str | int | float | bool | Reason | tuple[Reason, ...] | None"


@dataclass(frozen=True, slots=True)
class Reason:
    """A reason code with its parameters as (name, value) pairs; plain data, no text."""

    code: ReasonCode
    params: tuple[tuple[str, ParamValue], ...] = ()

    @classmethod
    def of(cls, code: ReasonCode, **params: ParamValue) -> Reason:
        """Reason.of(ReasonCode.RTO_AT_THRESHOLD, rto=3, threshold=3)."""
        return cls(code, tuple(params.items()))

    @classmethod
    def legacy(cls, text: str) -> Reason:
        """An old free-text reason, kept as it was written."""
        return cls(ReasonCode.LEGACY, (("text", text),))

    def param(self, name: str, default: ParamValue = None) -> ParamValue:
        """The value of one parameter."""
        return dict(self.params).get(name, default)

    def record(self) -> dict[str, Any]:
        """JSON-able form: {"code": ..., "params": {...}} (nested reasons likewise)."""
        return {"code": self.code.value, "params": {k: _param_record(v) for k, v in self.params}}

    @classmethod
    def from_record(cls, value: object) -> Reason:
        """Back from record(); a plain string (stored before codes) becomes a legacy reason."""
        if isinstance(value, Reason):
            return value
        if isinstance(value, str) or value is None:
            return cls.legacy(value or "")
        if not isinstance(value, dict):
            return cls.legacy(str(value))
        try:
            code = ReasonCode(value.get("code"))
        except ValueError:
            return cls.legacy(str(value.get("code", "")))
        params = value.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        return cls(code, tuple((str(k), _param_from_record(v)) for k, v in params.items()))


def _param_record(value: ParamValue) -> Any:
    if isinstance(value, Reason):
        return value.record()
    if isinstance(value, tuple):
        return [v.record() for v in value]
    return value


def _param_from_record(value: Any) -> ParamValue:
    if isinstance(value, dict) and "code" in value:
        return Reason.from_record(value)
    if isinstance(value, list):
        return tuple(Reason.from_record(v) for v in value)
    return value  # type: ignore[no-any-return]


_MAX_NUMERIC_ID_DIGITS = 1000  # int() refuses very long digit strings (sys.int_max_str_digits)


def id_sort_key(ont_id: str) -> tuple[int, int | str]:
    """Order ONT ids: numeric ids (from older systems) as numbers first, then the rest as text.

    Only ASCII digits are numbers here: '²' and '١٢٣' pass str.isdigit() but not int(); they
    sort as text, like any other id. Never raises, whatever the id holds.
    """
    if ont_id.isascii() and ont_id.isdigit() and len(ont_id) <= _MAX_NUMERIC_ID_DIGITS:
        return (0, int(ont_id))
    return (1, ont_id)


def ip_is_valid(ip: str | None) -> bool:
    """True when ip is a usable unicast IPv4/IPv6 host address."""
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    return not (addr.is_unspecified or addr.is_multicast or _is_broadcast(addr))


def _is_broadcast(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address(
        "255.255.255.255"
    )


@dataclass(frozen=True, slots=True)
class Ont:
    """Inventory record of one customer ONT."""

    id: str
    name: str = ""
    customer_id: str = ""
    location: str = ""
    lat: float | None = None
    lon: float | None = None
    ip: str = ""
    area: str = ""

    @property
    def ip_valid(self) -> bool:
        """Whether the IP can be probed."""
        return ip_is_valid(self.ip)

    @property
    def label(self) -> str:
        """Short human label: name, else id."""
        return self.name or self.id

    def record(self) -> dict[str, Any]:
        """The inventory fields as plain values: the ONT's JSON shape in the API and in events."""
        return {
            "id": self.id,
            "name": self.name,
            "customer_id": self.customer_id,
            "location": self.location,
            "lat": self.lat,
            "lon": self.lon,
            "ip": self.ip,
            "area": self.area,
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """A fact about one ONT: a pushed status, or a probe's reply/loss."""

    ont_id: str
    at: datetime
    source: Source = Source.PUSH
    status: Status | None = None
    rto_count: int | None = None
    replied: bool | None = None  # probes only: echo answered or lost
    # Probes with replied=False: rto_count, when given, is the absolute count of consecutive
    # lost echoes (an agent counts them itself, docs/agents.md); None adds one to the state's.

    @classmethod
    def push(
        cls,
        ont_id: str,
        status: Status,
        rto_count: int | None,
        at: datetime,
        source: Source = Source.PUSH,
    ) -> Observation:
        """A status report from outside (HTTP push, simulator, import)."""
        return cls(ont_id=ont_id, at=at, source=source, status=status, rto_count=rto_count)

    @classmethod
    def probe(cls, ont_id: str, replied: bool, at: datetime) -> Observation:
        """One ICMP echo's outcome."""
        return cls(ont_id=ont_id, at=at, source=Source.PROBE, replied=replied)

    @classmethod
    def agent(cls, ont_id: str, lost: int, at: datetime) -> Observation:
        """An agent's result: lost=0 replied, else that many consecutive echoes lost."""
        return cls(
            ont_id=ont_id,
            at=at,
            source=Source.AGENT,
            replied=lost == 0,
            rto_count=lost if lost else None,
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """The open problem of one ONT, from leaving ok until it is ON with rto 0 again."""

    severity: Severity
    opened_at: datetime
    reason: Reason
    escalated_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str = ""
    last_notified_at: datetime | None = None
    mass_outage: str = ""  # area key of the mass outage it was folded into, if any


@dataclass(frozen=True, slots=True)
class OntState:
    """Live state of one ONT."""

    ont_id: str
    status: Status = Status.UNKNOWN
    rto_count: int = 0
    status_since: datetime | None = None
    last_seen: datetime | None = None
    last_on: datetime | None = None
    incident: Incident | None = None
    flapping: bool = False
    transitions: tuple[datetime, ...] = ()  # recent ON<->OFF changes, for flap detection

    @property
    def severity(self) -> Severity:
        """Severity of the open incident, ok when none."""
        return self.incident.severity if self.incident else Severity.OK

    def evolve(self, **changes: object) -> OntState:
        """A copy with some fields changed.

        Every observation makes one or two of these (a 20,000-update push as many), so it
        copies the slots directly: half the cost of dataclasses.replace, same result (the
        class has no __post_init__), and an unknown field name is still an error.
        """
        if not changes.keys() <= _STATE_FIELD_SET:
            raise TypeError(f"OntState has no field {sorted(changes.keys() - _STATE_FIELD_SET)}")
        new = object.__new__(OntState)
        for name in _STATE_FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new


_STATE_FIELDS = tuple(f.name for f in fields(OntState))
_STATE_FIELD_SET = frozenset(_STATE_FIELDS)


@dataclass(frozen=True, slots=True)
class Event:
    """Something worth telling people: an incident opened, escalated, resolved, ..."""

    kind: EventKind
    severity: Severity
    at: datetime
    reason: Reason
    ont_id: str = ""
    area: str = ""
    status: Status | None = None
    rto_count: int | None = None
    duration: timedelta | None = None  # resolved: how long it was down
    members: tuple[str, ...] = ()  # mass outage: ONT ids
    notify: bool = True  # False: recorded, but no message (e.g. folded into a mass outage)
    agent: str = ""  # agent events: the probe agent's name

    @property
    def key(self) -> str:
        """What the event is about: the ONT id, agent:<name>, or area:<area>."""
        if self.ont_id:
            return self.ont_id
        return f"agent:{self.agent}" if self.agent else f"area:{self.area}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one observation or tick: the new state, events and why."""

    state: OntState
    events: tuple[Event, ...] = ()
    reason: Reason = Reason(ReasonCode.UNCHANGED)
    changed: bool = True


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Alert thresholds (settings with DESIGN.md's defaults)."""

    critical_rto: int = 3
    critical_off_after: timedelta = timedelta(hours=1)
    down_after: int = 2  # probes: consecutive lost echoes before OFF
    reminder_every: timedelta = timedelta(hours=1)
    flap_transitions: int = 5  # flapping: more than this many ON<->OFF changes in the window
    flap_window: timedelta = timedelta(minutes=10)
    mass_min_onts: int = 5
    mass_area_share: float = 0.30
    mass_window: timedelta = timedelta(minutes=2)
    health_silent_share: float = 0.90
