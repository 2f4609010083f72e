"""Time from an ONT going silent to OFF, with the quick second echo off (the old way) and on.

    sudo .venv/bin/python bench/confirm_bench.py [--onts 1000] [--trials 20] [--interval 5]

Needs root (nftables drop rules) and an ICMP socket. The real Engine (SQLite file in a
temporary folder), the real Prober and the real Sweeper probe --onts loopback ONTs on
127.21.0.0/16 every --interval seconds (timeout --timeout, the service's defaults 5 s and
1 s). For each mode, --trials ONTs (each of another area: no mass outage) are silenced by an
nftables rule that drops their echo requests on input, each at a random moment spread
uniformly over --spread sweep cycles, so each silence falls at a random phase of the sweep
cycle. The time measured runs from just before the rule is loaded to the engine's durable
commit (its feed) that makes the ONT OFF (down_after 2: two lost echoes). Every rule is
deleted as soon as its ONT is OFF. The modes run one after the other in the same process,
on the same engine and sweeper, each with its own ONTs.

It also times each silenced ONT's first stored notification (its incident opens at the
first lost echo, rto 1: a warning), which the retry does not move.

It also counts the echoes sent: on a quiet network both modes send one echo per ONT per
sweep and nothing more; with the retry on, each newly silent ONT costs one extra echo, and
each retry sweep up to 10 canaries (answering ONTs probed again, monitor.rounds).

Bounded: each trial waits at most 4 intervals + 10 s for OFF, the whole run at most
--limit seconds (default 300). Only 127.21.0.0/16 is ever probed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.engine import Engine
from monitor.feed import Commit, FeedItem
from monitor.model import Ont, Status
from monitor.prober import Prober
from monitor.sweep import Sweeper, SweepResult, detect_icmp_mode
from storage.database import Database
from storage.store import SqliteStore
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule

AREA_SIZE = 10  # ONTs per area: one silenced ONT is never a mass outage


def addresses(n: int) -> list[str]:
    """n addresses in 127.21.0.0/16 (x.y.0 and above .250 skipped), all loopback."""
    if n > 250 * 256:
        raise SystemExit("at most 64,000 ONTs (127.21.0.0/16)")
    out = [f"127.21.{i // 250}.{i % 250 + 1}" for i in range(n)]
    bad = [a for a in out if not ipaddress.ip_address(a).is_loopback]
    if bad:  # the guard: this bench never probes anything but loopback
        raise SystemExit(f"refusing non-loopback targets: {bad[:3]}")
    return out


def wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class CountingSweeper:
    """The real Sweeper, counting the echoes each sweep asks for (full sweeps and retries)."""

    sweeper: Sweeper
    full: int = 0  # echoes of full sweeps
    retries: int = 0  # echoes of retry sweeps (retried addresses and their canaries)
    sweeps: int = 0
    retry_sweeps: int = 0
    size: int = 0  # how many addresses a full sweep has

    @property
    def mode(self) -> str:
        return self.sweeper.mode

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        if len(addresses) >= self.size:
            self.full += len(addresses)
            self.sweeps += 1
        else:
            self.retries += len(addresses)
            self.retry_sweeps += 1
        return await self.sweeper.sweep(addresses)


@dataclass
class Watch:
    """OFF times of the watched ONTs, taken from the engine's commit feed."""

    watched: set[str] = field(default_factory=set)
    off_at: dict[str, float] = field(default_factory=dict)
    noticed_at: dict[str, float] = field(default_factory=dict)  # its first stored notice
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def __call__(self, item: FeedItem) -> None:
        if not isinstance(item, Commit):
            return
        now = time.monotonic()
        for ont, state in item.changed:
            if ont.id in self.watched and state.status is Status.OFF and ont.id not in self.off_at:
                self.off_at[ont.id] = now
                self.waiters[ont.id].set()
        for notice in item.notices:
            ont_id = notice.ont.id if notice.ont is not None else ""
            if ont_id in self.watched and ont_id not in self.noticed_at:
                self.noticed_at[ont_id] = now

    def watch(self, ont_id: str) -> asyncio.Event:
        self.watched.add(ont_id)
        return self.waiters.setdefault(ont_id, asyncio.Event())


async def trial(
    ont: Ont, delay: float, watch: Watch, bound: float
) -> tuple[float, float | None] | None:
    """Silence one ONT after delay; seconds from just before the rule to OFF and to its first
    notice (None: timed out)."""
    await asyncio.sleep(delay)
    done = watch.watch(ont.id)
    with ExitStack() as rules:
        started = time.monotonic()
        # nft runs in a thread: a blocking call on the loop would delay the prober itself.
        await asyncio.to_thread(rules.enter_context, nft_table(silence_rule(ont.ip)))
        try:
            await asyncio.wait_for(done.wait(), timeout=bound)
        except TimeoutError:
            return None
        finally:
            await asyncio.to_thread(rules.close)
    noticed = watch.noticed_at.get(ont.id)
    return watch.off_at[ont.id] - started, None if noticed is None else noticed - started


async def wait_all_on(engine: Engine, ids: Sequence[str], bound: float) -> None:
    """Until every listed ONT is ON (bounded)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if all(engine.states[i].status is Status.ON for i in ids):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"not every ONT was ON within {bound:.0f} s")


@dataclass(frozen=True)
class ModeResult:
    name: str
    times: list[float]
    notices: list[float]  # to the ONT's first stored notification (the incident opened)
    missed: int
    echoes_per_sweep: float  # full sweeps, quiet network
    quiet_extra: int  # retry echoes on the quiet network (should be none)
    extra_echoes: int  # retry echoes while the trials ran
    retry_sweeps: int  # retry sweeps while the trials ran


async def run_mode(
    name: str,
    retry: bool,
    engine: Engine,
    counting: CountingSweeper,
    onts: list[Ont],
    args: argparse.Namespace,
    rng: random.Random,
) -> ModeResult:
    """Start a prober, let it settle, run the trials concurrently, stop it."""
    prober = Prober(engine, counting, interval=args.interval, clock=wall, retry=retry)
    prober.start()
    try:
        await wait_all_on(engine, list(engine.onts), 4 * args.interval + 10)
        await asyncio.sleep(args.interval)  # one more sweep: each IP's last answer is known
        quiet_full, quiet_sweeps, quiet_retries = counting.full, counting.sweeps, counting.retries
        await asyncio.sleep(2 * args.interval)
        quiet = (counting.full - quiet_full) / max(1, counting.sweeps - quiet_sweeps)
        retries_before, retry_sweeps_before = counting.retries, counting.retry_sweeps
        quiet_extra = retries_before - quiet_retries
        watch = Watch()
        unsubscribe = engine.feed.subscribe(watch)
        try:
            spread = args.spread * args.interval
            bound = 4 * args.interval + 10
            results = await asyncio.gather(
                *(trial(o, rng.uniform(0, spread), watch, bound) for o in onts)
            )
        finally:
            unsubscribe()
        extra = counting.retries - retries_before
        retry_sweeps = counting.retry_sweeps - retry_sweeps_before
    finally:
        await prober.stop()
    times = [t[0] for t in results if t is not None]
    notices = [t[1] for t in results if t is not None and t[1] is not None]
    missed = len(results) - len(times)
    return ModeResult(name, times, notices, missed, quiet, quiet_extra, extra, retry_sweeps)


def pick(onts: list[Ont], k: int, rng: random.Random) -> list[Ont]:
    """k ONTs, each of a different area."""
    by_area: dict[str, Ont] = {}
    for ont in onts:
        by_area.setdefault(ont.area, ont)
    if k > len(by_area):
        raise SystemExit(f"{k} silenced ONTs need {k} areas; raise --onts")
    return rng.sample(sorted(by_area.values(), key=lambda o: o.id), k)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(r: ModeResult, n: int) -> None:
    if not r.times:
        print(f"{r.name}: no trial reached OFF ({r.missed} timed out)")
        return
    print(
        f"{r.name:<18} silent->OFF median {statistics.median(r.times):5.2f} s  "
        f"p90 {quantile(r.times, 0.9):5.2f} s  max {max(r.times):5.2f} s  "
        f"min {min(r.times):5.2f} s  (n={len(r.times)}, timed out {r.missed});  "
        f"quiet sweep {r.echoes_per_sweep:.0f} echoes for {n} ONTs (+{r.quiet_extra}), "
        f"{r.extra_echoes} extra echoes in {r.retry_sweeps} retry sweeps "
        f"for {len(r.times) + r.missed} silenced"
    )
    if r.notices:
        print(
            f"{'':<18} silent->first notice (incident opened) median "
            f"{statistics.median(r.notices):5.2f} s  p90 {quantile(r.notices, 0.9):5.2f} s  "
            f"max {max(r.notices):5.2f} s  (n={len(r.notices)})"
        )


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    ips = addresses(args.onts)
    onts = [
        Ont(id=str(i), name=f"RT {i}", area=f"Area{i // AREA_SIZE}", ip=ip)
        for i, ip in enumerate(ips)
    ]
    chosen = pick(onts, 2 * args.trials, rng)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database(Path(tmp) / "bench.db").open()
        engine = Engine(SqliteStore(db), clock=wall)
        await engine.start()
        sweeper = Sweeper(timeout=args.timeout, allowed=is_loopback)
        counting = CountingSweeper(sweeper, size=len(onts))
        try:
            await engine.upsert(onts)
            results = []
            modes = [("retry off (old)", False), ("retry on", True)]
            for k, (name, retry) in enumerate(modes):
                mine = chosen[k * args.trials : (k + 1) * args.trials]
                results.append(await run_mode(name, retry, engine, counting, mine, args, rng))
        finally:
            sweeper.close()
            await engine.stop()
            await db.close()
    print(
        f"{args.onts} loopback ONTs, interval {args.interval:g} s, timeout {args.timeout:g} s, "
        f"down_after 2, {args.trials} silenced per mode over {args.spread:g} cycles, "
        f"seed {args.seed}, sweep mode {sweeper.mode}"
    )
    for r in results:
        show(r, args.onts)
    return 0 if all(r.times and not r.missed for r in results) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--onts", type=int, default=1000)
    p.add_argument("--trials", type=int, default=20, help="silenced ONTs per mode")
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--spread", type=float, default=4.0, help="sweep cycles the silences span")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=float, default=300.0, help="seconds the whole run may take")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    why = missing_privileges("nft")
    if why is not None:
        raise SystemExit(f"confirm_bench {why}")
    if detect_icmp_mode() == "none":
        raise SystemExit("confirm_bench needs an ICMP socket")
    if arguments.seed is None:
        arguments.seed = random.randrange(1_000_000)
    sys.exit(asyncio.run(asyncio.wait_for(main(arguments), timeout=arguments.limit)))
