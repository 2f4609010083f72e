"""The agent's loop against the fake centre: store and forward, refusals, real loopback ICMP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from agent.client import Backoff, CentralClient
from agent.queue import ReportQueue
from agent.runner import AgentRunner
from monitor.sweep import ProbeResult, Sweeper, SweepResult, detect_icmp_mode, probe_icmp_mode
from tests.agent.centre import FakeCentre
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule

MODE = detect_icmp_mode()
needs_icmp = pytest.mark.skipif(
    MODE == "none", reason=f"no ICMP socket allowed: {probe_icmp_mode().reason}"
)
_NFT = missing_privileges("nft")
needs_nft = pytest.mark.skipif(_NFT is not None, reason=_NFT or "")

# Loopback addresses of this file only (other tests silence 127.0.1.x): 127.77.<pid-ish>.n.
NET = "127.77.3"


class ScriptedSweeper:
    """Answers as `silent` says, at once: for the store-and-forward rules, where the sweep
    itself is not under test (the loopback tests below use the real Sweeper)."""

    mode = "scripted"

    def __init__(self) -> None:
        self.silent: set[str] = set()
        self.broken = False  # every send fails (no socket): errors, not silence
        self.sweeps = 0

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        await asyncio.sleep(0.005)
        self.sweeps += 1
        if self.broken:
            results = {a: ProbeResult(a, False, None, "socket: EPERM") for a in addresses}
            return SweepResult(MappingProxyType(results), time.time(), 0.0, 0, 0, len(results))
        results = {
            a: ProbeResult(a, a not in self.silent, None if a in self.silent else 0.05)
            for a in addresses
        }
        replied = sum(r.replied for r in results.values())
        return SweepResult(MappingProxyType(results), time.time(), 0.005, len(results), replied, 0)


async def until(cond: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Wait (bounded) for cond() to hold."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


class Agent:
    """A runner on a real queue file and a real client, torn down after the test."""

    def __init__(self, path: Path, centre: FakeCentre, sweeper: Any, **kw: Any) -> None:
        self.path, self.centre, self.sweeper, self.kw = path, centre, sweeper, kw
        self.runner: AgentRunner | None = None

    async def start(self) -> AgentRunner:
        queue = await ReportQueue(self.path, self.kw.pop("max_bytes", 1 << 24)).open()
        client = CentralClient(self.centre.url, self.kw.pop("token", self.centre.token), timeout=2)
        options: dict[str, Any] = {
            "interval": 0.2,
            "backoff": Backoff(base=0.05, cap=0.4),
            "refused_wait": 0.3,
            "assignment_every": 60.0,
            **self.kw,
        }
        self.runner = AgentRunner(
            name="POP-T", queue=queue, client=client, sweeper=self.sweeper, **options
        )
        await self.runner.start()
        return self.runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
            await self.runner.client.close()
            await self.runner.queue.close()
            self.runner = None


@pytest.fixture
async def centre() -> AsyncIterator[FakeCentre]:
    c = FakeCentre(targets=[(str(i), f"{NET}.{i}") for i in range(1, 6)])
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(centre: FakeCentre, sweeper: Any, name: str = "q.sqlite", **kw: Any) -> Agent:
        a = Agent(tmp_path / name, centre, sweeper, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        await a.stop()


async def test_first_report_is_full_then_quiet(centre: FakeCentre, agents: Any) -> None:
    """Start: assignment fetched, a full report of all five; later reports carry no news."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    await until(lambda: len(centre.reports) >= 4, what="four reports")
    first = centre.reports[0]  # the first sweep waited for the assignment
    assert first["seq"] == 1 and first["assignment"] == centre.version
    assert first["full"] and sorted(o[0] for o in first["obs"]) == ["1", "2", "3", "4", "5"]
    assert all(o[2] == 0 for o in first["obs"])
    later = centre.reports[centre.reports.index(first) + 1 :]
    assert later and all(not r["full"] and r["obs"] == [] for r in later)
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == sorted(seqs) and len({r["epoch"] for r in centre.reports}) == 1
    last = centre.reports[-1]
    assert last["sweep"]["targets"] == 5 and last["sweep"]["replied"] == 5
    assert last["interval"] == 0.2 and last["assignment"] == centre.version
    assert set(last) >= {
        "epoch",
        "seq",
        "sent_at",
        "interval",
        "assignment",
        "full",
        "sweep",
        "queue",
        "obs",
    }
    assert runner.status()["queue"]["depth"] <= 1


async def test_store_and_forward_replays_in_order_with_original_times(
    centre: FakeCentre, agents: Any
) -> None:
    """Centre down (port closed) while ONT 2 goes silent: reports pile up in the queue; once
    the centre is back they arrive in seq order, none missing or twice, with the times the
    observations were made at (before the centre came back)."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    await until(lambda: len(centre.reports) >= 2, what="first reports")
    await centre.stop()
    down_at = time.time()
    sweeper.silent.add(f"{NET}.2")
    await until(lambda: runner.queue.depth >= 8, what="reports queued while down")
    assert runner.stats.retries >= 1
    sweeper.silent.discard(f"{NET}.2")
    n = runner.sweeps
    await until(lambda: runner.sweeps >= n + 2, what="sweeps after the ONT is back")
    await asyncio.sleep(0.5)
    up_at = time.time()
    await centre.start()
    await until(lambda: runner.queue.depth == 0, within=10, what="the queue drained")
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a reorder"
    two = [(at, lost) for i, at, lost in centre.obs() if i == "2"]
    times = [at for at, _ in two]
    assert times == sorted(times)
    outage = [(at, lost) for at, lost in two if down_at <= at < up_at]
    assert [lost for _, lost in outage] == [1, 2, 3, 0], two  # the retry confirms at once
    late = [r for r in centre.reports if r["sent_at"] >= up_at and r["sweep"]["at"] < up_at]
    assert len(late) >= 8 and all(r["queue"]["depth"] >= 0 for r in late)
    assert max(r["queue"]["depth"] for r in late) >= 7  # the backlog was visible to the centre
    assert not any(r["full"] for r in late)  # nothing dropped: no full report needed


async def test_backoff_is_bounded_while_the_centre_is_down(centre: FakeCentre, agents: Any) -> None:
    """Down for ~2 s with backoff base 0.05 s, cap 0.4 s: a few tries, not a flood; once up,
    the backlog goes within about one cap."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    await until(lambda: len(centre.reports) >= 1)
    await centre.stop()
    await asyncio.sleep(2.0)
    tries = runner.stats.retries
    assert 3 <= tries <= 2.0 / 0.2 + 4  # waits grow to >= cap/2 = 0.2 s each
    await centre.start()
    back = time.monotonic()
    await until(lambda: runner.queue.depth == 0, within=5)
    assert time.monotonic() - back < 1.5


async def test_the_centre_answering_again_ends_a_long_backoff(
    centre: FakeCentre, agents: Any
) -> None:
    """Backoff waits of 10-20 s; the assignment fetch (every 0.3 s) sees the centre back and
    the backlog goes at once, not after the wait."""
    sweeper = ScriptedSweeper()
    runner = await agents(
        centre, sweeper, backoff=Backoff(base=20.0, cap=20.0), assignment_every=0.3
    ).start()
    await until(lambda: len(centre.reports) >= 1)
    await centre.stop()
    await until(lambda: runner.stats.retries >= 1 and runner.queue.depth >= 3)
    await centre.start()
    back = time.monotonic()
    await until(lambda: runner.queue.depth == 0, within=5, what="the backlog")
    assert time.monotonic() - back < 3


async def test_retry_after_of_an_answering_centre_is_honoured(
    centre: FakeCentre, agents: Any
) -> None:
    """503 with Retry-After: 2 — the next try waits those 2 s even though the assignment
    fetches (every 0.3 s) succeed meanwhile."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper, assignment_every=0.3).start()
    await until(lambda: len(centre.reports) >= 1)
    centre.status, centre.retry_after = 503, "2"
    n = len(centre.received)
    await until(lambda: len(centre.received) > n, what="a 503")
    t = time.monotonic()
    await until(lambda: len(centre.received) > n + 1, within=5, what="the retry")
    assert time.monotonic() - t >= 1.9 and runner.stats.retries >= 1
    centre.status = None


async def test_a_report_answered_4xx_is_set_aside_and_the_rest_flow(
    centre: FakeCentre, agents: Any
) -> None:
    """A 400 for one report: it leaves the queue (kept aside, counted), later ones arrive."""
    sweeper = ScriptedSweeper()
    centre.bad_seqs = {3}
    runner = await agents(centre, sweeper).start()
    await until(lambda: any(r["seq"] >= 6 for r in centre.reports), what="reports after seq 3")
    assert 3 not in [r["seq"] for r in centre.reports]
    assert runner.queue.set_aside == 1 and runner.stats.bad == 1
    assert [r["seq"] for r in centre.received].count(3) == 1  # never sent again


async def test_a_refused_token_keeps_every_report(centre: FakeCentre, agents: Any) -> None:
    """401: nothing is deleted; reports wait; with the right token they all arrive."""
    sweeper = ScriptedSweeper()
    real = centre.token
    centre.token = "rotated-at-the-centre"
    runner = await agents(centre, sweeper, token=real).start()
    await until(lambda: runner.queue.depth >= 5, what="reports kept while refused")
    assert centre.reports == [] and runner.stats.refused >= 1 and runner.queue.set_aside == 0
    kept = runner.queue.depth
    centre.token = real
    await until(lambda: runner.queue.depth == 0, within=10, what="delivered after the fix")
    assert len(centre.reports) >= kept
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_want_full_and_a_new_assignment_version(centre: FakeCentre, agents: Any) -> None:
    """want_full in an answer: the next report is full. An answer naming another version:
    the assignment is fetched at once (the periodic fetch is 60 s away)."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    await until(lambda: len(centre.reports) >= 3)
    centre.want_full = True
    n = len(centre.reports)
    await until(lambda: any(r["full"] for r in centre.reports[n + 1 :]), what="a full report")
    centre.targets.append(("6", f"{NET}.6"))
    await until(
        lambda: runner.assignment is not None and len(runner.assignment.targets) == 6,
        within=5,
        what="the new assignment",
    )
    await until(lambda: any("6" in [o[0] for o in r["obs"]] for r in centre.reports))
    assert centre.assignment_gets.count(None) == 1  # later fetches carried the ETag


async def test_a_restart_while_the_centre_is_down_keeps_its_queue_and_assignment(
    centre: FakeCentre, agents: Any
) -> None:
    """Stop the agent with reports queued and the centre down; start it again: it sweeps the
    assignment it had, its new reports follow the old ones in seq, one epoch throughout."""
    sweeper = ScriptedSweeper()
    first = agents(centre, sweeper)
    runner = await first.start()
    await until(lambda: len(centre.reports) >= 1)
    await centre.stop()
    await until(lambda: runner.queue.depth >= 3)
    await first.stop()
    second = agents(centre, sweeper)
    runner = await second.start()
    assert runner.assignment is not None and len(runner.assignment.targets) == 5
    await until(lambda: runner.queue.depth >= 6)
    await centre.start()
    await until(lambda: runner.queue.depth == 0, within=10)
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == list(range(1, len(seqs) + 1)) and len({r["epoch"] for r in centre.reports}) == 1


async def test_a_graceful_restart_keeps_the_lost_counts(centre: FakeCentre, agents: Any) -> None:
    """ONT 3 dark for a while; stop and start the agent: its full report goes on counting
    (not 1 again), so the centre's rto_count of a long-dark ONT does not fall back."""
    sweeper = ScriptedSweeper()
    sweeper.silent.add(f"{NET}.3")
    first = agents(centre, sweeper)
    runner = await first.start()
    await until(lambda: runner.tracker.lost.get("3", 0) >= 6, what="a long count")
    await first.stop()
    counted = max(o[2] for o in centre.obs() if o[0] == "3")
    assert counted == 3  # the climb: beyond it nothing is sent until a refresh or full
    n = len(centre.reports)
    second = await agents(centre, sweeper).start()
    await until(lambda: any(r["full"] and r["obs"] for r in centre.reports[n:]), what="full")
    full = next(r for r in centre.reports[n:] if r["full"] and r["obs"])
    (three,) = [o for o in full["obs"] if o[0] == "3"]
    assert three[2] >= 7 and second.tracker.lost["3"] >= 7


async def test_the_bound_drops_the_oldest_and_a_full_report_follows(
    centre: FakeCentre, agents: Any
) -> None:
    """A tiny queue bound while the centre is down: the oldest go, the centre sees dropped,
    and a full report re-states every ONT."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper, max_bytes=1500).start()
    await until(lambda: len(centre.reports) >= 1)
    await centre.stop()
    await until(lambda: runner.queue.dropped >= 3, what="drops")
    await centre.start()
    await until(
        lambda: (
            runner.queue.depth == 0
            and any(r["full"] and r["queue"]["dropped"] >= 3 for r in centre.reports[1:])
        ),
        within=10,
    )
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == sorted(seqs) and seqs != list(range(1, len(seqs) + 1))  # a gap: dropped


async def test_a_slow_centre_never_delays_the_sweeps(centre: FakeCentre, agents: Any) -> None:
    """Each answer takes 1 s; sweeps go on at 0.2 s; reports queue and go one at a time."""
    centre.delay = 1.0
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    started = time.monotonic()
    await until(lambda: runner.sweeps >= 10, within=5, what="ten sweeps")
    elapsed = time.monotonic() - started
    assert elapsed < 3.5 and len(centre.received) <= elapsed / 1.0 + 1
    assert runner.queue.depth >= 5 and runner.overruns == 0


async def test_the_gate_holding_sends_no_losses(agents: Any) -> None:
    """12 ONTs, all silent in one sweep: the report says held, carries no losses; the one
    that still answers is reported; after the gate releases, losses are counted again."""
    c = await FakeCentre(targets=[(str(i), f"{NET}.{i}") for i in range(1, 13)]).start()
    try:
        sweeper = ScriptedSweeper()
        runner = await agents(c, sweeper).start()
        await until(lambda: any(r["full"] and r["obs"] for r in c.reports), what="full")
        n = len(c.reports)
        sweeper.silent = {f"{NET}.{i}" for i in range(1, 13)}
        await until(lambda: any(r["sweep"]["held"] for r in c.reports[n:]), what="held")
        held = [r for r in c.reports[n:] if r["sweep"]["held"]]
        assert all(o[2] == 0 for r in held for o in r["obs"]) and held[0]["sweep"]["retried"] == 0
        assert all(v == 0 for v in runner.tracker.lost.values())
        sweeper.silent = {f"{NET}.1", f"{NET}.2"}
        await until(lambda: runner.tracker.lost.get("1", 0) >= 2, what="losses counted again")
        assert runner.tracker.lost["3"] == 0
    finally:
        await c.stop()


async def test_no_echo_sent_is_held_not_lost(centre: FakeCentre, agents: Any) -> None:
    """Five ONTs (under the gate's 10) and a sweep whose every send fails: the report says
    held and carries no losses — an agent that cannot probe is no outage."""
    sweeper = ScriptedSweeper()
    runner = await agents(centre, sweeper).start()
    await until(lambda: any(r["full"] and r["obs"] for r in centre.reports), what="full")
    n = len(centre.reports)
    sweeper.broken = True
    await until(lambda: len(centre.reports) >= n + 4, what="reports while broken")
    broken = centre.reports[n + 2 :]  # one may have been swept before the break
    assert all(r["sweep"]["held"] and r["obs"] == [] for r in broken)
    assert all(v == 0 for v in runner.tracker.lost.values())


@needs_icmp
async def test_real_loopback_sweeps_reach_the_centre(centre: FakeCentre, agents: Any) -> None:
    """The real Sweeper (loopback only) on five 127.77.3.x addresses: all answer, sweep stats
    say so, durations are real."""
    sweeper = Sweeper(timeout=0.3, allowed=is_loopback)
    try:
        await agents(centre, sweeper, interval=0.5).start()
        await until(lambda: len(centre.reports) >= 3, what="three reports")
        last = centre.reports[-1]["sweep"]
        assert (last["targets"], last["replied"], last["silent"], last["held"]) == (5, 5, 0, False)
        assert 0 < last["duration"] < 0.3
        full = next(r for r in centre.reports if r["full"] and r["obs"])
        assert sorted((o[0], o[2]) for o in full["obs"]) == [(str(i), 0) for i in range(1, 6)]
    finally:
        sweeper.close()


@needs_icmp
@needs_nft
@pytest.mark.privileged
async def test_a_silenced_loopback_ont_is_confirmed_within_one_round(
    centre: FakeCentre, agents: Any
) -> None:
    """nftables drops echoes to 127.77.3.4: the next report holds lost 1 and 2 about one
    timeout apart (the round's retry), and 0 once the rule is gone."""
    sweeper = Sweeper(timeout=0.3, allowed=is_loopback)
    try:
        runner = await agents(centre, sweeper, interval=1.0).start()
        await until(lambda: any(r["full"] and r["obs"] for r in centre.reports), what="full")
        with nft_table(silence_rule(f"{NET}.4")):
            await until(
                lambda: any(o[0] == "4" and o[2] == 2 for o in centre.obs()),
                what="lost 2",
                within=5,
            )
        await until(
            lambda: [o[2] for o in centre.obs() if o[0] == "4"][-1] == 0, what="back", within=5
        )
        four = [o for o in centre.obs() if o[0] == "4"]
        one, two = next(o for o in four if o[2] == 1), next(o for o in four if o[2] == 2)
        assert 0.2 <= two[1] - one[1] <= 1.0
        same = next(r for r in centre.reports if one in [tuple(o) for o in r["obs"]])
        assert two in [tuple(o) for o in same["obs"]]  # one report, one round
        assert same["sweep"]["retried"] == 1 and runner.stats.bad == 0
    finally:
        sweeper.close()
