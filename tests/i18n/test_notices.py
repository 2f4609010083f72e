"""One line per stored notification, for every event kind, in Indonesian and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from i18n.notices import render, render_event
from monitor.model import Event, EventKind, Ont, Reason, ReasonCode, Severity, Status
from storage.codec import event_payload
from tests.i18n.language import english_in

AT = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
ONT = Ont(id="2", name="Baciro RT 9", area="Baciro")
R = Reason.of
RTO3 = R(ReasonCode.RTO_AT_THRESHOLD, rto=3, threshold=3)
K = EventKind
W, C, OK = Severity.WARNING, Severity.CRITICAL, Severity.OK


def ev(kind: EventKind, sev: Severity, reason: Reason, **kw: object) -> Event:
    return Event(kind, sev, AT, reason, **kw)  # type: ignore[arg-type]


ONE = {"ont_id": "2", "area": "Baciro"}
# event, with the ONT?, Indonesian, English
CASES: list[tuple[Event, bool, str, str]] = [
    (
        ev(K.OPENED, W, Reason(ReasonCode.WENT_OFF), status=Status.OFF, rto_count=0, **ONE),
        True,
        "PERINGATAN · Baciro RT 9 (id 2): berubah jadi OFF (status OFF, rto 0)",
        "WARNING · Baciro RT 9 (id 2): went OFF (status OFF, rto 0)",
    ),
    (
        ev(K.ESCALATED, C, RTO3, status=Status.OFF, rto_count=3, **ONE),
        True,
        "NAIK KE KRITIS · Baciro RT 9 (id 2): rto 3, mencapai batas kritis 3 (status OFF, rto 3)",
        "ESCALATED TO CRITICAL · Baciro RT 9 (id 2): rto 3, at or above the critical limit of 3 "
        "(status OFF, rto 3)",
    ),
    (
        ev(
            K.RESOLVED,
            W,
            Reason(ReasonCode.RECOVERED),
            status=Status.ON,
            rto_count=0,
            duration=timedelta(seconds=4),
            **ONE,
        ),
        True,
        "PULIH · Baciro RT 9 (id 2): ON lagi setelah mati 4 dtk",
        "RECOVERED · Baciro RT 9 (id 2): ON again after 4 s down",
    ),
    (
        ev(
            K.REMINDER,
            C,
            R(ReasonCode.REMINDER, severity="critical", open_s=3900, cause=RTO3),
            duration=timedelta(seconds=3900),
            **ONE,
        ),
        True,
        "PENGINGAT KRITIS · Baciro RT 9 (id 2): masih kritis, belum diakui selama 1 jam 5 mnt: "
        "rto 3, mencapai batas kritis 3",
        "REMINDER CRITICAL · Baciro RT 9 (id 2): still critical, unacknowledged for 1 h 5 min: "
        "rto 3, at or above the critical limit of 3",
    ),
    (
        ev(
            K.REMINDER,
            C,
            R(ReasonCode.AREA_REMINDER, down=3, size=6, open_s=7500),
            area="Baciro",
            members=("1", "2", "3"),
        ),
        False,
        "PENGINGAT GANGGUAN MASSAL · area Baciro: masih 3 dari 6 ONT OFF, belum diakui selama "
        "2 jam 5 mnt",
        "REMINDER MASS OUTAGE · area Baciro: still 3 of 6 ONTs OFF, unacknowledged for 2 h 5 min",
    ),
    (
        ev(K.INVALID_IP, W, R(ReasonCode.INVALID_IP, ip="abc"), **ONE),
        True,
        "IP TIDAK VALID · Baciro RT 9 (id 2): alamat IP tidak valid: abc",
        "INVALID IP · Baciro RT 9 (id 2): invalid IP address: abc",
    ),
    (
        ev(K.FLAPPING, W, R(ReasonCode.FLAPPING, transitions=6, window_s=600), **ONE),
        True,
        "NAIK-TURUN · Baciro RT 9 (id 2): 6 kali berganti ON/OFF dalam 10 mnt",
        "FLAPPING · Baciro RT 9 (id 2): 6 ON/OFF changes in 10 min",
    ),
    (
        ev(K.FLAPPING_ENDED, OK, R(ReasonCode.FLAPPING_ENDED, window_s=600, status="ON"), **ONE),
        True,
        "STABIL LAGI · Baciro RT 9 (id 2): stabil selama 10 mnt, sekarang ON",
        "STABLE AGAIN · Baciro RT 9 (id 2): stable for 10 min, now ON",
    ),
    (
        ev(
            K.MASS_OUTAGE,
            C,
            R(ReasonCode.MASS_OUTAGE, count=5, size=8, window_s=120),
            area="Baciro",
            status=Status.OFF,
            members=("1", "2", "3", "4", "5"),
        ),
        False,
        "GANGGUAN MASSAL · area Baciro: 5 ONT OFF · 5 dari 8 ONT OFF dalam 2 mnt",
        "MASS OUTAGE · area Baciro: 5 ONTs OFF · 5 of 8 ONTs OFF within 2 min",
    ),
    (
        ev(
            K.MASS_OUTAGE_RESOLVED,
            C,
            R(ReasonCode.MASS_OUTAGE_ENDED, back=5, members=5, still_off=0),
            area="",
            status=Status.ON,
            members=("1", "2", "3", "4", "5"),
            duration=timedelta(minutes=42),
        ),
        False,
        "GANGGUAN MASSAL PULIH · seluruh jaringan: 5 ONT kembali setelah 42 mnt",
        "MASS OUTAGE RESOLVED · the whole network: 5 ONTs back after 42 min",
    ),
    (
        ev(K.MONITOR_OFFLINE, C, R(ReasonCode.MONITOR_BLIND, silent=95, targets=100)),
        False,
        "PEMANTAU TIDAK MELIHAT JARINGAN · 95 dari 100 alamat ONT diam dalam satu sapuan: "
        "kemungkinan besar jaringan pemantau sendiri yang terganggu; alarm ONT ditahan sampai "
        "ada balasan lagi",
        "MONITOR CANNOT SEE THE NETWORK · 95 of 100 ONT addresses silent in one sweep: the "
        "monitor's own network is the likely fault; ONT alerts are held until replies come back",
    ),
    (
        ev(K.MONITOR_ONLINE, OK, R(ReasonCode.MONITOR_SEES, replied=90, targets=100)),
        False,
        "PEMANTAU MELIHAT JARINGAN LAGI · balasan kembali (90 dari 100): pemantauan berjalan lagi",
        "MONITOR SEES THE NETWORK AGAIN · replies are back (90 of 100): probing resumed",
    ),
    (
        ev(
            K.AGENT_LOST,
            C,
            R(ReasonCode.AGENT_LOST, agent="POP-2", onts=1240, silent_s=45),
            agent="POP-2",
        ),
        False,
        "AGEN PROBE HILANG · agen probe POP-2 hilang, 1.240 ONT tidak terpantau (diam 45 dtk)",
        "PROBE AGENT LOST · probe agent POP-2 lost, 1,240 ONTs unobserved (silent 45 s)",
    ),
    (
        ev(
            K.AGENT_BACK,
            OK,
            R(ReasonCode.AGENT_BACK, agent="POP-2", onts=1240, away_s=200),
            agent="POP-2",
        ),
        False,
        "AGEN PROBE KEMBALI · agen probe POP-2 kembali, 1.240 ONT terpantau lagi "
        "(hilang 3 mnt 20 dtk)",
        "PROBE AGENT BACK · probe agent POP-2 back, 1,240 ONTs observed again (away 3 min 20 s)",
    ),
]

# A probe agent's own uplink failing, or back: the monitor's kinds, told as the agent's.
AGENT_MONITOR_CASES: list[tuple[Event, str, str]] = [
    (
        ev(
            K.MONITOR_OFFLINE,
            C,
            R(ReasonCode.AGENT_BLIND, agent="POP-2", silent=1200, targets=1240),
            agent="POP-2",
        ),
        "AGEN PROBE TIDAK MELIHAT ONT-NYA · agen probe POP-2 tidak bisa menjangkau ONT-nya: "
        "1.200 dari 1.240 alamat diam dalam satu sapuan; alarm ONT-nya ditahan sampai ada "
        "balasan lagi",
        "PROBE AGENT CANNOT SEE ITS ONTS · probe agent POP-2 cannot reach its ONTs: 1,200 of "
        "1,240 addresses silent in one sweep; their alerts are held until replies come back",
    ),
    (
        ev(
            K.MONITOR_ONLINE,
            OK,
            R(ReasonCode.AGENT_SEES, agent="POP-2", replied=1239, targets=1240),
            agent="POP-2",
        ),
        "AGEN PROBE MELIHAT ONT-NYA LAGI · agen probe POP-2 menjangkau ONT-nya lagi "
        "(1.239 dari 1.240 membalas)",
        "PROBE AGENT SEES ITS ONTS AGAIN · probe agent POP-2 reaches its ONTs again "
        "(1,239 of 1,240 replied)",
    ),
]


@pytest.mark.parametrize(
    ("event", "id_text", "en_text"), AGENT_MONITOR_CASES, ids=["blind", "sees"]
)
def test_agent_monitor_events_read_as_the_agents(event: Event, id_text: str, en_text: str) -> None:
    payload = event_payload(event, None)
    kind, severity = event.kind.value, event.severity.value
    assert render(kind, severity, payload, "id") == id_text
    assert render(kind, severity, payload, "en") == en_text
    assert english_in(id_text) == [], id_text
    assert render_event(event, None, "en") == en_text
    # A payload stored without "agent" still names the agent through its reason.
    del payload["agent"]
    assert render(kind, severity, payload, "en") == en_text


def test_the_table_covers_every_kind() -> None:
    assert {e.kind for e, _, _, _ in CASES} == set(EventKind)


@pytest.mark.parametrize(
    ("event", "with_ont", "id_text", "en_text"), CASES, ids=lambda v: str(v)[:30]
)
def test_stored_notification_line(event: Event, with_ont: bool, id_text: str, en_text: str) -> None:
    payload = event_payload(event, ONT if with_ont else None)
    kind, severity = event.kind.value, event.severity.value
    assert render(kind, severity, payload, "id") == id_text
    assert render(kind, severity, payload, "en") == en_text
    assert english_in(id_text) == [], id_text
    # The line for an event not yet stored (log line, stored message) is the same.
    assert render_event(event, ONT if with_ont else None, "id") == id_text


def test_recoveries_read_as_recoveries() -> None:
    event = CASES[2][0]
    line = render_event(event, ONT, "en")
    assert line.startswith("RECOVERED") and "WARNING" not in line


def test_without_the_ont_record_the_id_is_shown() -> None:
    event = CASES[0][0]
    assert render("opened", "warning", event_payload(event, None), "en").startswith(
        "WARNING · id 2: went OFF"
    )


def test_an_old_payload_with_english_reason_still_renders() -> None:
    old = {"kind": "opened", "reason": "rto_count 3 >= 3", "ont_id": "7", "rto_count": 3}
    assert render("opened", "critical", old, "id") == (
        "KRITIS · id 7: rto_count 3 >= 3 (status -, rto 3)"
    )


def test_an_unknown_kind_gets_its_own_name() -> None:
    line = render("ont_renamed", "ok", {"ont_id": "7", "reason": None}, "id")
    assert line == "ONT RENAMED · id 7"  # no reason: no dangling separator
