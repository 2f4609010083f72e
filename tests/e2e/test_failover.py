"""Two real `ontwatch run` processes on one PostgreSQL: the leader killed, the leader frozen.

Issue 14 asks for this proof: `kill -9` of the leader during a load of pushes and a stream of
alerts costs no acknowledged push and no alert, at most one duplicate message per takeover,
and the standby takes over within a bounded time; a leader frozen (SIGSTOP) for longer than
its lease writes nothing after it resumes. Every figure is read back from the survivor's
API, the fake Telegram and the database itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.failover_harness import (
    LEASE_SECONDS,
    Followers,
    PushLoad,
    ServiceProcess,
    count_alerts,
    current_xid,
    failover_env,
    history_ats,
    inventory,
    lease,
    lost_acks,
    pending_outbox,
    post,
    sql,
    start_instance,
    stored_alert_words,
    wait_role,
    written_late,
)
from tests.e2e.harness import FakeBotProcess, figure, wait_until

pytestmark = pytest.mark.e2e
LOAD_ONTS = 30
CLIENTS = 6
# A standby takes over within one lease plus one renewal period (docs/postgresql.md); the
# rest is the new leader loading the state and the clients' next retry.
TAKEOVER_BOUND = LEASE_SECONDS + LEASE_SECONDS / 3 + 3.0
# A leader frozen inside a write transaction holds the lease row's key-share lock until
# PostgreSQL ends its session, idle that long (the fence bounds it to the lease): one lease more.
FROZEN_TAKEOVER_BOUND = TAKEOVER_BOUND + LEASE_SECONDS


@dataclass
class Pair:
    """Instances A (the first leader) and B (standby) on one database, and the fake Telegram."""

    a: ServiceProcess
    b: ServiceProcess
    fake: FakeBotProcess
    pg_url: str

    def followers(self) -> Followers:
        return Followers([self.a.base, self.b.base])


@pytest.fixture
def lease_seconds() -> float:
    """The instances' lease (a test may parametrize another)."""
    return LEASE_SECONDS


@pytest.fixture
def pair(
    tmp_path: Path, fake_bot: FakeBotProcess, tile_url: str, pg_url: str, lease_seconds: float
) -> Iterator[Pair]:
    """A leads (started first), B stands by; the inventory imported through A."""
    started: list[ServiceProcess] = []

    def env(name: str) -> dict[str, str]:
        return failover_env(tmp_path, fake_bot, tile_url, pg_url, name, lease=lease_seconds)

    try:
        a = start_instance(tmp_path, env("A"), "A")
        started.append(a)
        wait_role(a, "leader", 20)
        b = start_instance(tmp_path, env("B"), "B")
        started.append(b)
        wait_role(b, "standby", 20)
        wait_until(fake_bot.connected, 20, "bot connected")
        code, report = post(a.base, "/api/onts/import", inventory(LOAD_ONTS), timeout=60)
        assert code == 200, report
        yield Pair(a, b, fake_bot, pg_url)
    finally:
        for svc in started:
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGCONT)  # a frozen one must be able to stop
            svc.stop()


def first_ack_after(load: PushLoad, base: str, t0: float) -> float | None:
    """Monotonic time of the first push acknowledged by base after t0."""
    with load.out.lock:
        times = [a.t for a in load.out.acks if a.base == base and a.t > t0]
    return min(times) if times else None


def drain_alerts(pg_url: str, limit: float = 90) -> None:
    """Until every outbox row is sent (bounded): 20 messages a minute go to one group."""
    wait_until(lambda: pending_outbox(pg_url) == 0, limit, "outbox drained")
    time.sleep(2.0)  # bounded grace: a duplicate would arrive now


def test_kill9_of_the_leader_loses_no_push_and_no_alert(pair: Pair) -> None:
    """kill -9 of A mid-load, with an alert message in flight (Telegram holds A's send
    unanswered): B takes over; every acknowledged push is stored, every alert delivered —
    the one in flight too, resent by B — and at most one duplicate message."""
    _, epoch_a = lease(pair.pg_url)
    with PushLoad(pair.followers(), clients=CLIENTS, load_onts=LOAD_ONTS) as load:
        wait_until(lambda: len(load.out.acks) >= 300, 30, "load under way")
        pair.fake.control("hang", methods=["sendMessage"])
        in_flight = wait_until(lambda: pair.fake.control("state")["hung_requests"], 20, "a send")
        t_kill = time.monotonic()
        pair.a.kill9()
        pair.fake.control("clear_faults")  # Telegram answers again (A's parked send: 502)
        wait_until(
            lambda: first_ack_after(load, pair.b.base, t_kill), TAKEOVER_BOUND + 10, "B acks"
        )
        time.sleep(4.0)  # the load goes on against the new leader
        out = load.stop()
    takeover = (first_ack_after(load, pair.b.base, t_kill) or 0) - t_kill
    holder, epoch_b = lease(pair.pg_url)
    drain_alerts(pair.pg_url)
    lost = lost_acks(pair.b, out.acks)
    alerts = count_alerts(pair.fake, stored_alert_words(pair.pg_url))
    figure(
        "E2E failover kill -9",
        takeover_s=f"{takeover:.2f}",
        lease_s=LEASE_SECONDS,
        sends_in_flight=in_flight,
        acked=len(out.acks),
        acked_lost=len(lost),
        unanswered=len(out.unanswered),
        not_connected=out.not_connected,
        given_up=out.given_up,
        alerts_stored=alerts.stored,
        alerts_delivered=alerts.delivered,
        alerts_lost=alerts.lost,
        duplicate_messages=alerts.duplicate_messages,
        duplicate_blocks=alerts.duplicate_blocks,
        epochs=f"{epoch_a}->{epoch_b}",
    )
    assert holder == "B" and epoch_b == epoch_a + 1
    assert lost == [], lost[:5]
    assert out.given_up == 0
    assert alerts.stored >= 5, "the alert stream flowed"
    assert alerts.lost == 0
    assert alerts.duplicate_messages <= 1  # one takeover
    assert 0 < takeover <= TAKEOVER_BOUND


def probe_frozen(base: str, results: list[object]) -> threading.Thread:
    """A push to the probe ONT sent to the frozen leader: it waits in A's socket backlog and
    is read only after A resumes, when A no longer holds the lease."""

    def run() -> None:
        try:
            results.append(
                post(base, "/api/ont-status/P1", {"status": "OFF", "rto_count": 1}, timeout=30)[0]
            )
        except OSError as exc:
            results.append(type(exc).__name__)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for_takeover(load: PushLoad, pair: Pair, t_stop: float) -> None:
    """Until B acknowledges a push (bounded). A frozen A caught inside a write transaction
    holds the fence's lock on the lease row: PostgreSQL ends that idle session after one
    lease, or B ends the expired epoch's sessions itself; so the bound is one lease more."""
    wait_until(lambda: first_ack_after(load, pair.b.base, t_stop), FROZEN_TAKEOVER_BOUND + 10, "B")


def stopped(pid: int) -> bool:
    """The process is in state T (stopped by a signal), per /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def claims_after(pg_url: str, epoch: int) -> int | None:
    """Outbox rows claimed under epoch after the lease moved on (None: no claim columns)."""
    columns = {
        r[0]
        for r in sql(
            pg_url,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox'",
        )
    }
    if not {"claimed_epoch", "claimed_at"} <= columns:
        return None
    return int(
        sql(
            pg_url,
            "SELECT count(*) FROM outbox WHERE claimed_epoch = %s"
            " AND claimed_at::timestamptz > (SELECT since FROM leadership)",
            (epoch,),
        )[0][0]
    )


def test_a_frozen_leader_writes_nothing_after_it_resumes(pair: Pair, tmp_path: Path) -> None:
    """SIGSTOP A for longer than its lease: B takes over; after SIGCONT, A stores nothing
    (the pushes it reads then are refused, its outbox claims stop) and exits with 75; started
    again (as its supervisor would), it comes back as a standby."""
    holder, epoch_a = lease(pair.pg_url)
    assert holder == "A"
    probes: list[object] = []
    with PushLoad(pair.followers(), clients=CLIENTS, load_onts=LOAD_ONTS) as load:
        wait_until(lambda: len(load.out.acks) >= 200, 30, "load under way")
        t_stop = time.monotonic()
        os.kill(pair.a.proc.pid, signal.SIGSTOP)
        wait_until(lambda: stopped(pair.a.proc.pid), 5, "A stopped")
        frozen_at = datetime.now(UTC)  # A stamps nothing from here until SIGCONT
        threads = [probe_frozen(pair.a.base, probes) for _ in range(3)]
        wait_for_takeover(load, pair, t_stop)
        takeover = (first_ack_after(load, pair.b.base, t_stop) or 0) - t_stop
        xid = current_xid(pair.pg_url)  # B leads, A is still frozen
        time.sleep(max(0.0, 2 * LEASE_SECONDS - (time.monotonic() - t_stop)))
        frozen = time.monotonic() - t_stop
        os.kill(pair.a.proc.pid, signal.SIGCONT)
        for t in threads:
            t.join(35)
        t_cont = time.monotonic()
        wait_until(lambda: pair.a.proc.poll() is not None, 20, "A exits")
        stepped_down = time.monotonic() - t_cont
        time.sleep(1.0)
        out = load.stop()
    holder_after, epoch_b = lease(pair.pg_url)
    probe_rows = history_ats(pair.b, "P1")
    lost = lost_acks(pair.b, out.acks)
    late_claims = claims_after(pair.pg_url, epoch_a)
    late = written_late(pair.pg_url, xid, frozen_at)
    drain_alerts(pair.pg_url)
    alerts = count_alerts(pair.fake, stored_alert_words(pair.pg_url))
    figure(
        "E2E failover SIGSTOP",
        frozen_s=f"{frozen:.1f}",
        lease_s=LEASE_SECONDS,
        takeover_s=f"{takeover:.2f}",
        probes=",".join(map(str, probes)),
        probe_rows=len(probe_rows),
        late_claims=late_claims,
        late_history=late["history"],
        late_notifications=late["notifications"],
        unanswered_by_a=sum(1 for _, base, t in out.unanswered if base == pair.a.base),
        a_exit=pair.a.proc.poll(),
        a_exit_after_s=f"{stepped_down:.2f}",
        acked=len(out.acks),
        acked_lost=len(lost),
        alerts_stored=alerts.stored,
        alerts_lost=alerts.lost,
        duplicate_messages=alerts.duplicate_messages,
        epochs=f"{epoch_a}->{epoch_b}",
    )
    assert frozen > LEASE_SECONDS
    assert holder_after == "B" and epoch_b > epoch_a
    assert len(probes) == 3 and 200 not in probes, probes
    assert probe_rows == [], "the frozen leader stored a push after it resumed"
    assert late_claims in (None, 0)
    assert late == {"history": 0, "notifications": 0}, late
    assert pair.a.proc.returncode == 75  # EX_TEMPFAIL: lost the lease (docs/operations.md)
    assert lost == [], lost[:5]
    assert alerts.lost == 0 and alerts.duplicate_messages <= 1  # one takeover
    assert 0 < takeover <= FROZEN_TAKEOVER_BOUND
    again = start_instance(tmp_path, pair.a.env, "A")
    try:
        wait_role(again, "standby", 20)
        assert lease(pair.pg_url) == (holder_after, epoch_b)
    finally:
        assert again.stop() == 0
