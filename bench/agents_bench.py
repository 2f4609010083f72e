"""100,000 ONTs over 4 probe agents at a 5 s interval: what the centre and the agents cost.

    sudo .venv/bin/python bench/agents_bench.py [--onts 100000] [--agents 4] [--seconds 120]

The real centre (`ontwatch run`, bot on the fake Bot API, one alert group, the central prober
on) and --agents real `ontwatch agent` processes, all in the root namespace on this machine.
Agent k is assigned the prefix 127.(40+k).0.0/16 and sweeps its share of the ONTs there:
loopback only (Linux answers every 127/8 address), nothing else is ever probed. The
inventory goes in through POST /api/onts after the agents are added, so the central prober
never sweeps an agent's ONTs.

Once every ONT is ON and two more intervals have passed, --seconds of a quiet network are
measured, with no request of the bench's own to the centre meanwhile:
  * CPU % of one core of the centre process and of each agent process (/proc/PID/stat
    utime + stime over the window's wall time; every thread counted);
  * bytes between the agents and the centre, from nftables counters on the centre's TCP port
    in the output hook (every packet on lo passes it once): IP packets as the kernel sends
    them, so TCP/IP and HTTP headers, gzip bodies, answers and the 30 s assignment checks are
    all in; given per minute for all agents and per agent (the total / agents).
Then --silence ONTs (each of another agent and area: no mass outage) are silenced one after
another with an nftables rule dropping their echo requests, each at a random phase of the
sweep cycle; the time runs from just before the rule is loaded to the fake Bot API's receipt
of the first sendMessage to the alert group naming the ONT (both CLOCK_MONOTONIC on this
machine); also to the alert's text saying OFF (ON->OFF keeps the warning, so that is the
critical edit in place at rto 3, one interval later) and to the OFF the centre records (its
status_since: the agent's observation time).

Bounded: every wait has a limit (all ON: --ready-limit s; each alert: 30 s), the agents and
the centre are stopped and the work folder (bench/.tmp/agents) removed at the end.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import GROUP, TOKEN, FakeBotProcess
from tests.netfilter import missing_privileges, nft_table, silence_rule
from tests.process import ROOT, ServiceProcess, cli, free_port, service_env

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
AREA_SIZE = 50  # ONTs per area: one silenced ONT is never a mass outage
PER_AGENT_MAX = 250 * 250  # addresses 127.(40+k).0-249.1-250


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agent_address(k: int, i: int) -> str:
    """The i-th ONT address of agent k, in 127.(40+k).0.0/16."""
    return f"127.{40 + k}.{i // 250}.{i % 250 + 1}"


def inventory(onts: int, agents: int) -> list[dict[str, Any]]:
    """onts ONTs spread evenly over the agents' prefixes; all addresses loopback."""
    rows = []
    for n in range(onts):
        k, i = n % agents, n // agents
        ip = agent_address(k, i)
        if not ipaddress.ip_address(ip).is_loopback:  # the guard: only loopback is probed
            raise SystemExit(f"refusing non-loopback target {ip}")
        rows.append(
            {"id": str(n + 1), "name": f"ONT#{n + 1:06d}", "area": f"A{n // AREA_SIZE}", "ip": ip}
        )
    return rows


class Counters:
    """nftables byte counters of the TCP traffic to and from the centre's port."""

    def __init__(self, table: str) -> None:
        self.table = table

    def read(self) -> dict[str, int]:
        """Bytes so far: to_centre, from_centre."""
        out = {}
        for name in ("to_centre", "from_centre"):
            done = subprocess.run(
                ["nft", "-j", "list", "counter", "inet", self.table, name],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            )
            for item in json.loads(done.stdout)["nftables"]:
                if "counter" in item:
                    out[name] = int(item["counter"]["bytes"])
        return out


@contextmanager
def port_counters(port: int) -> Iterator[Counters]:
    """Count every byte of TCP to and from the centre's port (output hook: once per packet)."""
    body = (
        "counter to_centre {}\ncounter from_centre {}\n"
        "chain out { type filter hook output priority -30; policy accept;\n"
        f"  ip daddr 127.0.0.1 tcp dport {port} counter name to_centre\n"
        f"  ip saddr 127.0.0.1 tcp sport {port} counter name from_centre\n"
        "}"
    )
    with nft_table(body, prefix="ow_agents_bench") as table:
        yield Counters(table)


@dataclass
class Agent:
    """One `ontwatch agent` process."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_agent(work: Path, name: str, base: str, interval: float) -> Agent:
    """Start an agent with its own queue file; the token file was written by `agents add`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env.update(
        ONTWATCH_CENTRAL_URL=base,
        ONTWATCH_AGENT_NAME=name,
        ONTWATCH_AGENT_TOKEN_FILE=str(work / f"{name}.token"),
        ONTWATCH_AGENT_QUEUE=str(work / f"{name}-queue.sqlite"),
        ONTWATCH_PROBE_INTERVAL=str(interval),
        ONTWATCH_PROBE_TIMEOUT="1",
        PYTHONUNBUFFERED="1",
    )
    log = work / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "agent"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Agent(name, proc, log)


def wait_online(svc: ServiceProcess, n: int, limit: float) -> float:
    """Seconds until every ONT is ON (bounded)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if svc.get("/api/stats").get("online") == n:
            return time.monotonic() - t0
        time.sleep(1)
    raise SystemExit(f"not all {n} ONTs ON after {limit:.0f} s: {svc.get('/api/stats')}")


@dataclass
class Quiet:
    """The quiet window's figures."""

    wall: float
    centre_cpu: float  # % of one core
    agent_cpu: list[float]
    to_centre: int  # bytes
    from_centre: int
    sweep: list[float]  # each agent's last sweep duration (s)
    online: int
    rss: list[float]  # MB: the centre, then each agent
    stats: tuple[dict[str, Any], dict[str, Any]]  # /api/stats before and after the window
    alerts: int  # messages to the alert group during the window (a quiet network: 0)
    states: list[str]  # each agent's state after the window


def measure_quiet(
    svc: ServiceProcess,
    fake: FakeBotProcess,
    agents: Sequence[Agent],
    counters: Counters,
    seconds: float,
) -> Quiet:
    """CPU and bytes over `seconds` of a quiet network; no request to the centre meanwhile
    (its /api/stats is read just before and after; the fake Bot API counts the alerts)."""
    pids = [svc.proc.pid, *(a.proc.pid for a in agents)]
    before, sent0 = svc.get("/api/stats"), len(fake.sent(GROUP))
    t0, cpu0, bytes0 = time.monotonic(), [cpu_seconds(p) for p in pids], counters.read()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = [100 * (cpu_seconds(p) - c) / wall for p, c in zip(pids, cpu0, strict=True)]
    bytes1 = counters.read()
    after = svc.get("/api/stats")
    listing = svc.get("/api/agents")
    items = listing["agents"] if isinstance(listing, dict) else listing
    sweeps = [float((a.get("sweep") or {}).get("duration") or 0) for a in items]
    return Quiet(
        wall=wall,
        centre_cpu=cpu[0],
        agent_cpu=cpu[1:],
        to_centre=bytes1["to_centre"] - bytes0["to_centre"],
        from_centre=bytes1["from_centre"] - bytes0["from_centre"],
        sweep=sweeps,
        online=int(after.get("online", 0)),
        rss=[rss_mb(p) for p in pids],
        stats=(before, after),
        alerts=len(fake.sent(GROUP)) - sent0,
        states=[str(a.get("state", "?")) for a in items],
    )


@dataclass
class Trial:
    """One silenced ONT: seconds from silence to the alert and to the OFF the centre records."""

    ont: str
    to_alert: float | None  # the first message naming it (the warning opened by a lost echo)
    to_off_alert: float | None  # its text saying OFF: the critical edit at rto 3
    to_off: float | None  # the OFF the centre records (the agent's observation time)


def alerts(
    fake: FakeBotProcess, name: str, since: float, limit: float
) -> tuple[float | None, float | None]:
    """Seconds from `since` to the first alert naming the ONT (a sendMessage to the group,
    its text as sent: the pinned status message is edited later to list it, not an alert)
    and to the first alert text (sent or edited in place) saying it is OFF."""
    first = off = None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and off is None:
        for call in fake.sent(GROUP):
            text = str(call["params"].get("text", ""))
            if call["time"] < since or name not in text or "Network status" in text:
                continue
            if first is None and call["method"].lower() == "sendmessage":
                first = float(call["time"]) - since
            if off is None and " · OFF" in text:
                off = float(call["time"]) - since
        time.sleep(0.1)
    return first, off


def silence_one(
    svc: ServiceProcess, fake: FakeBotProcess, row: dict[str, Any], phase: float
) -> Trial:
    """Silence one ONT after `phase` seconds; time its alert at the fake Bot API and its OFF."""
    time.sleep(phase)
    with ExitStack() as rule:
        started, started_wall = time.monotonic(), time.time()
        rule.enter_context(nft_table(silence_rule(row["ip"]), prefix="ow_agents_silence"))
        to_alert, to_off_alert = alerts(fake, row["name"], started, limit=30)
        if to_off_alert is None:
            print(f"  {row['name']}: no OFF alert within 30 s")
        to_off = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = svc.get(f"/api/onts/{row['id']}")
            if state["status"] == "OFF":
                to_off = datetime.fromisoformat(state["status_since"]).timestamp() - started_wall
                break
            time.sleep(0.2)
    return Trial(row["name"], to_alert, to_off_alert, to_off)


def pick(rows: list[dict[str, Any]], n: int, agents: int, rng: random.Random) -> list[dict]:
    """n ONTs, round-robin over the agents, each of another area."""
    chosen: list[dict[str, Any]] = []
    areas: set[str] = set()
    while len(chosen) < n:
        row = rng.choice(rows)
        k = int(row["id"]) - 1
        if k % agents == len(chosen) % agents and row["area"] not in areas:
            chosen.append(row)
            areas.add(row["area"])
    return chosen


def table(args: argparse.Namespace, q: Quiet, trials: list[Trial], setup: dict[str, float]) -> str:
    """The README-ready figures."""
    per_min = 60 / q.wall
    total_min = (q.to_centre + q.from_centre) * per_min
    firsts = [t.to_alert for t in trials if t.to_alert is not None]
    off_alerts = [t.to_off_alert for t in trials if t.to_off_alert is not None]
    offs = [t.to_off for t in trials if t.to_off is not None]

    def span(values: list[float]) -> str:
        if not values:
            return "none"
        return f"median {statistics.median(values):.1f} s, max {max(values):.1f} s"

    lines = [
        f"| {args.onts:,} ONTs over {args.agents} agents, interval {args.interval:g} s, "
        f"{q.wall:.0f} s quiet | figure |",
        "|---|---|",
        f"| centre CPU (`ontwatch run`) | **{q.centre_cpu:.1f} %** of one core |",
        "| agent CPU (`ontwatch agent`, "
        f"{args.onts // args.agents:,} ONTs each) | "
        + ", ".join(f"{c:.1f} %" for c in q.agent_cpu)
        + " of one core |",
        f"| memory (RSS) | centre {q.rss[0]:.0f} MB; agents "
        + ", ".join(f"{m:.0f}" for m in q.rss[1:])
        + " MB |",
        f"| agents' sweep of {args.onts // args.agents:,} ONTs | "
        + ", ".join(f"{s:.2f} s" for s in q.sweep)
        + " |",
        f"| agents ↔ centre, quiet network (IP bytes on the centre's port) | "
        f"**{total_min / 1e3:.1f} kB/min** in all, {total_min / args.agents / 1e3:.1f} kB/min "
        f"per agent ({q.to_centre * per_min / 1e3:.1f} kB/min up, "
        f"{q.from_centre * per_min / 1e3:.1f} kB/min down) |",
        f"| the quiet window: ONTs ON before / after; alerts sent | "
        f"{q.stats[0].get('online', 0):,} / {q.stats[1].get('online', 0):,}; {q.alerts} |",
        f"| silent → first Telegram alert ({len(firsts)} of {len(trials)} ONTs) | "
        f"**{span(firsts)}** |",
        f"| silent → the alert says OFF (edited in place at rto 3, critical; "
        f"{len(off_alerts)} of {len(trials)}) | "
        f"{span(off_alerts)} |",
        f"| silent → OFF at the centre (observation time) | {span(offs)} |",
        f"| set-up: {args.onts:,} ONTs imported / all ON | {setup['import']:.0f} s / "
        f"{setup['online']:.0f} s |",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    rows = inventory(args.onts, args.agents)
    work = HERE / ".tmp" / "agents"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    names = [f"AG-{k + 1}" for k in range(args.agents)]
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        fake = FakeBotProcess()
        stack.callback(fake.stop)
        env = service_env(
            work / "ontwatch.db",
            free_port(),
            ONTWATCH_PROBE="on",
            ONTWATCH_PROBE_INTERVAL=str(args.interval),
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=fake.url,
            ONTWATCH_ALERT_CHATS=str(GROUP),
            ONTWATCH_LANG="en",
            ONTWATCH_BACKUP_DIR=str(work / "backups"),
        )
        for k, name in enumerate(names):
            added = cli(
                "agents", "add", name, "--prefix", f"127.{40 + k}.0.0/16",
                "--token-file", str(work / f"{name}.token"),
                env=env,
            )  # fmt: skip
            if added.returncode != 0:
                raise SystemExit(f"agents add {name}: {added.stderr.strip()}")
        svc = ServiceProcess(env, log=work / "centre.log")
        stack.callback(svc.stop)
        counters = stack.enter_context(port_counters(svc.port))
        t0 = time.monotonic()
        for start in range(0, len(rows), 10_000):
            code, body = svc.request("POST", "/api/onts", rows[start : start + 10_000])
            if code not in (200, 201):
                raise SystemExit(f"POST /api/onts: {code} {str(body)[:300]}")
        setup = {"import": time.monotonic() - t0}
        agents = [start_agent(work, n, svc.base, args.interval) for n in names]
        for a in agents:
            stack.callback(a.stop)
        setup["online"] = wait_online(svc, args.onts, args.ready_limit)
        print(f"{args.onts} ONTs imported in {setup['import']:.0f} s, all ON after "
              f"{setup['online']:.0f} s; settling {2 * args.interval:g} s", flush=True)  # fmt: skip
        time.sleep(2 * args.interval)
        quiet = measure_quiet(svc, fake, agents, counters, args.seconds)
        counts = [{k: st.get(k) for k in ("online", "offline", "unknown")} for st in quiet.stats]
        print(
            f"quiet window done: before {counts[0]}, after {counts[1]}; {quiet.alerts} alerts"
            f" meanwhile; agents {quiet.states}; silencing {args.silence} ONTs",
            flush=True,
        )
        trials = [
            silence_one(svc, fake, row, rng.uniform(0, args.interval))
            for row in pick(rows, args.silence, args.agents, rng)
        ]
        for t in trials:
            print(
                f"  {t.ont}: first alert {t.to_alert} s, alert saying OFF {t.to_off_alert} s, "
                f"OFF at the centre {t.to_off} s after the silence"
            )
        dead = [a.name for a in agents if a.proc.poll() is not None]
        if dead:
            raise SystemExit(f"agents exited during the bench: {dead}")
    print(
        f"\nagents_bench: {args.onts:,} ONTs, {args.agents} agents, interval {args.interval:g} s, "
        f"seed {args.seed}, {os.cpu_count()} CPUs\n"
    )
    print(table(args, quiet, trials, setup))
    return 0 if all(t.to_off_alert is not None for t in trials) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--onts", type=int, default=100_000)
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=120.0, help="the quiet window")
    p.add_argument("--silence", type=int, default=5, help="ONTs silenced one after another")
    p.add_argument("--ready-limit", type=float, default=300.0, help="s for every ONT to be ON")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    if not 1 <= args.agents <= 8:
        raise SystemExit("--agents: 1 to 8")
    if args.onts > args.agents * PER_AGENT_MAX or args.onts < args.agents * args.silence:
        raise SystemExit("--onts: at least agents × silence, at most 62,500 per agent")
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


if __name__ == "__main__":
    arguments = parse()
    why = missing_privileges("nft")
    if why is not None:
        raise SystemExit(f"agents_bench {why}")
    sys.exit(run(arguments))
