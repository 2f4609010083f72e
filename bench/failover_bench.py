"""Takeover time of two real `ontwatch run` instances on one PostgreSQL, over several kills.

Usage: .venv/bin/python bench/failover_bench.py [--takeovers 4] [--lease 3] [--clients 6]

What it measures (issue 14, the README's failover figures): instances A and B share one
PostgreSQL server of their own (tests/pg.py: initdb in /tmp, a free loopback port, fsync
on); a push load follows whichever leads (tests/e2e/failover_harness.py) and a stream of
alerts flows to the fake Telegram. Each round `kill -9`s the leader mid-load, times the
takeover (kill to the first push the other instance acknowledges), then starts the killed
one again as a standby, as its supervisor would. At the end: acknowledged pushes lost,
alerts lost and duplicate messages over all the takeovers. Then (--bulk N, 0 = skip) one
bulk push of N problems on the leader: how long it takes, whether the leader keeps its
lease, and the longest its lease renewal was seen waiting on a lock meanwhile (the fence's
FOR KEY SHARE lock is held for each write transaction; the renewal must not wait on it). Loopback only; every wait bounded.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import pg as test_pg
from tests.e2e import failover_harness as fh
from tests.e2e.harness import FakeBotProcess, wait_until
from tests.fakes.tile_server import ThreadedTileServer
from tests.process import ServiceProcess


def first_ack_after(load: fh.PushLoad, base: str, t0: float) -> float | None:
    """Monotonic time of the first push base acknowledged after t0."""
    with load.out.lock:
        times = [a.t for a in load.out.acks if a.base == base and a.t > t0]
    return min(times) if times else None


def one_takeover(
    load: fh.PushLoad, leader: ServiceProcess, standby: ServiceProcess, bound: float
) -> float:
    """kill -9 the leader; seconds until the standby acknowledged a push."""
    t_kill = time.monotonic()
    leader.kill9()
    wait_until(lambda: first_ack_after(load, standby.base, t_kill), bound, "takeover")
    return (first_ack_after(load, standby.base, t_kill) or t_kill) - t_kill


RENEWAL_WAIT_SQL = (
    "SELECT COALESCE(MAX(EXTRACT(EPOCH FROM now() - query_start)), 0) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    " AND query LIKE 'UPDATE leadership SET lease_until%%'"
)


def bulk_on_leader(url: str, leader: ServiceProcess, n: int) -> None:
    """One bulk push of n problems on the leader, the renewal's lock waits sampled meanwhile."""
    rows = fh.inventory(n)
    for k in range(0, len(rows), 5000):
        assert fh.post(leader.base, "/api/onts/import", rows[k : k + 5000], timeout=120)[0] == 200
    before = fh.lease(url)
    body = [{"id": f"L{i}", "status": "OFF", "rto_count": 1} for i in range(1, n + 1)]
    waits: list[float] = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            waits.append(float(fh.sql(url, RENEWAL_WAIT_SQL)[0][0]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:
        code, _ = fh.post(leader.base, "/api/ont-status", body, timeout=120)
    except OSError as exc:
        code = type(exc).__name__
    took = time.monotonic() - t0
    time.sleep(2.0)
    done.set()
    sampler.join(10)
    after = fh.lease(url)
    print(
        f"bulk push of {n} problems on the leader: {code} in {took:.2f} s; lease "
        f"{'kept' if after == before else f'lost ({before} -> {after})'}; its renewal seen "
        f"waiting on a lock for up to {max(waits):.2f} s"
    )


def run(args: argparse.Namespace, server: test_pg.PgServer, tmp: Path) -> None:
    """The rounds, then the read-back and the figures."""
    url = server.url(server.create_database())
    fake = FakeBotProcess()
    with ThreadedTileServer() as tiles:
        envs = {
            n: fh.failover_env(tmp, fake, tiles.url_template, url, n, lease=args.lease)
            for n in ("A", "B")
        }
        procs = {"A": fh.start_instance(tmp, envs["A"], "A")}
        try:
            fh.wait_role(procs["A"], "leader", 30)
            procs["B"] = fh.start_instance(tmp, envs["B"], "B")
            fh.wait_role(procs["B"], "standby", 30)
            code, _ = fh.post(procs["A"].base, "/api/onts/import", fh.inventory(30), timeout=60)
            assert code == 200
            targets = fh.Followers([procs["A"].base, procs["B"].base])
            times, leader = [], "A"
            with fh.PushLoad(targets, clients=args.clients, load_onts=30, seconds=600) as load:
                wait_until(lambda: len(load.out.acks) >= 200, 30, "load")
                for _ in range(args.takeovers):
                    other = "B" if leader == "A" else "A"
                    bound = 3 * args.lease + 15
                    times.append(one_takeover(load, procs[leader], procs[other], bound))
                    procs[leader] = fh.start_instance(tmp, envs[leader], leader)
                    fh.wait_role(procs[leader], "standby", 30)
                    leader = other
                    time.sleep(2.0)
                out = load.stop()
            survivor = procs[leader]
            wait_until(lambda: fh.pending_outbox(url) == 0, 180, "outbox drained")
            time.sleep(2.0)
            lost = fh.lost_acks(survivor, out.acks)
            alerts = fh.count_alerts(fake, fh.stored_alert_words(url))
            if args.bulk:
                bulk_on_leader(url, survivor, args.bulk)
        finally:
            for svc in procs.values():
                svc.stop()
            fake.stop()
    print(f"{args.takeovers} takeovers, lease {args.lease} s, {args.clients} push clients:")
    print(
        "  takeover (kill -9 to first push acknowledged by the other): "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    )
    print(
        f"  pushes acknowledged {len(out.acks)}, lost {len(lost)}, unanswered "
        f"{len(out.unanswered)} (sent to a dying leader: may or may not be stored)"
    )
    print(
        f"  alerts stored {alerts.stored}, delivered blocks {alerts.delivered}, lost "
        f"{alerts.lost}, duplicate messages {alerts.duplicate_messages} "
        f"(promise: at most {args.takeovers}, one per takeover)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takeovers", type=int, default=4)
    ap.add_argument("--lease", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--bulk", type=int, default=20_000)
    args = ap.parse_args()
    reason = test_pg.skip_reason()
    if reason:
        raise SystemExit(f"needs PostgreSQL: {reason}")
    tmp = Path(tempfile.mkdtemp(prefix="ontwatch-failover-"))
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; logs under {tmp}"
    )
    bindir = test_pg.find_bindir()
    assert bindir is not None
    server = test_pg.PgServer(bindir, fsync=True).start()
    try:
        run(args, server, tmp)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
