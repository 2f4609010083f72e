"""Network namespaces for the probe-agent end-to-end test: one POP per namespace, nothing outside.

Why namespaces: an agent exists to sweep ONTs the centre cannot reach. Each POP here is a
network namespace with a veth pair to the root namespace (where the centre runs) and a dummy
interface holding its ONT addresses, which only that namespace can reach. The root namespace
gets a guard table that counts and drops every packet to the ONT ranges: the central prober
must never probe an agent's ONTs, and with the machine's default route such a probe would
otherwise leave the machine. Losses are made with nftables inside the namespace (ONTs
silenced) or in the root namespace (the link to the centre cut), never by stopping processes.

Everything is removed on exit, also on failure: tables, namespaces (their veth ends go with
them), and the agent processes' whole process groups. Needs root, `ip` and `nft`
(tests/netfilter.missing_privileges says why not).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.netfilter import netns, netns_exec, nft_table
from tests.process import ROOT

ONT_RANGE = "10.232.0.0/16"  # every POP's ONTs: 10.232.N.k; only namespace N reaches them
LINK_RANGE = "10.231.0.0/16"  # the veth links: 10.231.N.1 (root side), 10.231.N.2 (POP side)
_TOOL_TIMEOUT = 20.0


@dataclass(frozen=True)
class Pop:
    """One POP: its namespace, the link to the centre and its ONT addresses."""

    index: int
    name: str  # the agent's name, e.g. POP-1
    ns: str
    root_if: str  # the root namespace's end of the veth pair
    root_ip: str  # where the POP reaches the centre
    ns_ip: str
    addresses: tuple[str, ...]

    @property
    def prefix(self) -> str:
        """The POP's ONT prefix, as the centre assigns it to the agent."""
        return f"10.232.{self.index}.0/24"


def _ip(*argv: str, ns: str | None = None, stdin: str | None = None) -> None:
    """Run one `ip` command (in a namespace when ns is given); raise with its error text."""
    cmd = ["ip", *(["-n", ns] if ns else []), *argv]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=_TOOL_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def ont_addresses(index: int, count: int) -> tuple[str, ...]:
    """The ONT addresses of POP index: 10.232.index.1 .. count."""
    if not 1 <= index <= 250 or not 1 <= count <= 250:
        raise ValueError("POP index and ONT count must be within 1..250")
    return tuple(f"10.232.{index}.{k}" for k in range(1, count + 1))


@contextmanager
def pop_namespace(index: int, onts: int) -> Iterator[Pop]:
    """A POP namespace linked to the root namespace, its ONTs on a dummy interface inside."""
    with netns(prefix=f"owpop{index}") as ns:
        root_if = f"owr{index}{uuid.uuid4().hex[:6]}"
        root_ip, ns_ip = f"10.231.{index}.1", f"10.231.{index}.2"
        _ip("link", "add", root_if, "type", "veth", "peer", "name", "uplink", "netns", ns)
        try:
            _ip("addr", "add", f"{root_ip}/30", "dev", root_if)
            _ip("link", "set", root_if, "up")
            _ip("addr", "add", f"{ns_ip}/30", "dev", "uplink", ns=ns)
            _ip("link", "set", "uplink", "up", ns=ns)
            addresses = ont_addresses(index, onts)
            _ont_interface(ns)
            batch = "".join(f"addr add {a}/32 dev onts\n" for a in addresses)
            _ip("-batch", "-", ns=ns, stdin=batch)
            # Agents run as root (raw ICMP); the datagram mode is allowed too, per namespace.
            # Written through /proc (per namespace), so no procps `sysctl` is needed.
            ping_range = "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range"
            done = netns_exec(ns, ["sh", "-c", ping_range])
            if done.returncode != 0:
                raise RuntimeError(f"ping_group_range in {ns}: {done.stderr.strip()}")
            yield Pop(index, f"POP-{index}", ns, root_if, root_ip, ns_ip, addresses)
        finally:
            subprocess.run(
                ["ip", "link", "del", root_if],
                capture_output=True,
                timeout=_TOOL_TIMEOUT,
                check=False,
            )


def _ont_interface(ns: str) -> None:
    """The interface `onts` inside ns that holds the ONT addresses, up.

    A dummy interface where the kernel has the module; otherwise (some container kernels)
    one end of a veth pair whose both ends stay inside the namespace: either way the
    addresses exist only in that namespace.
    """
    try:
        _ip("link", "add", "onts", "type", "dummy", ns=ns)
    except RuntimeError:
        _ip("link", "add", "onts", "type", "veth", "peer", "name", "onts-peer", ns=ns)
        _ip("link", "set", "onts-peer", "up", ns=ns)
    _ip("link", "set", "onts", "up", ns=ns)


def _nft(argv: Sequence[str], ns: str | None = None, stdin: str | None = None) -> str:
    """Run nft (inside namespace ns when given); return its output, raise with its error."""
    cmd = ["ip", "netns", "exec", ns, "nft", *argv] if ns else ["nft", *argv]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=_TOOL_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


class Guard:
    """The root namespace's guard: packets to the ONT ranges are counted and dropped."""

    def __init__(self, table: str) -> None:
        self.table = table

    def packets(self) -> int:
        """How many packets the root namespace tried to send to an ONT range."""
        listing = json.loads(_nft(["-j", "list", "counter", "inet", self.table, "to_onts"]))
        for item in listing.get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise RuntimeError(f"no counter to_onts in {self.table}: {listing}")


@contextmanager
def root_guard(onts: str = ONT_RANGE) -> Iterator[Guard]:
    """Count and drop, in the root namespace, everything sent to the POPs' ONT addresses."""
    body = (
        "counter to_onts {}\n"
        "chain out { type filter hook output priority -20; policy accept;\n"
        f"  ip daddr {onts} counter name to_onts drop\n"
        "}\n"
        "chain forwarded { type filter hook forward priority -20; policy accept;\n"
        f"  ip daddr {onts} counter name to_onts drop\n"
        f"  ip saddr {LINK_RANGE} drop\n"  # nothing from a POP is forwarded off the machine
        "}"
    )
    with nft_table(body, prefix="ow_guard") as table:
        yield Guard(table)


class Silencer:
    """Echo requests to the addresses in its set are dropped inside a POP: those ONTs are silent.

    One nftables set per POP, so ONTs are silenced and heard again one by one, at recorded
    times, without reloading rules.
    """

    def __init__(self, pop: Pop, table: str) -> None:
        self.pop = pop
        self.table = table
        self.silent: set[str] = set()

    def silence(self, *addresses: str) -> None:
        """From now on these ONTs do not answer."""
        self._element("add", addresses)
        self.silent.update(addresses)

    def hear(self, *addresses: str) -> None:
        """From now on these ONTs answer again."""
        self._element("delete", addresses)
        self.silent.difference_update(addresses)

    def hear_all(self) -> None:
        """Every ONT of the POP answers again."""
        if self.silent:
            self.hear(*sorted(self.silent))

    def _element(self, verb: str, addresses: Sequence[str]) -> None:
        for a in addresses:
            if a not in self.pop.addresses:
                raise ValueError(f"{a} is not an ONT of {self.pop.name}")
        elements = "{ " + ", ".join(addresses) + " }"
        _nft([verb, "element", "inet", self.table, "silent", elements], ns=self.pop.ns)


@contextmanager
def silencer(pop: Pop) -> Iterator[Silencer]:
    """A table inside the POP's namespace that drops echo requests to a set of its ONTs."""
    table = f"ow_silence_{uuid.uuid4().hex[:8]}"
    body = (
        f"table inet {table} {{\n"
        "  set silent { type ipv4_addr; }\n"
        "  chain in { type filter hook input priority -10; policy accept;\n"
        "    ip daddr @silent icmp type echo-request drop\n"
        "  }\n"
        "}\n"
    )
    _nft(["-f", "-"], ns=pop.ns, stdin=body)
    try:
        yield Silencer(pop, table)
    finally:
        subprocess.run(
            ["ip", "netns", "exec", pop.ns, "nft", "delete", "table", "inet", table],
            capture_output=True,
            timeout=_TOOL_TIMEOUT,
            check=False,
        )


@contextmanager
def link_cut(pop: Pop) -> Iterator[None]:
    """Drop everything between the POP and the centre, both ways, in the root namespace.

    Dropped silently (no reset, no ICMP error), as a cut WAN link looks: the agent's
    requests time out and its reports pile up in its queue.
    """
    body = (
        "chain in { type filter hook input priority -10; policy accept;\n"
        f'  iifname "{pop.root_if}" drop\n'
        "}\n"
        "chain out { type filter hook output priority -10; policy accept;\n"
        f'  oifname "{pop.root_if}" drop\n'
        "}"
    )
    with nft_table(body, prefix="ow_cut"):
        yield


def agent_env(
    pop: Pop, central_url: str, token_file: Path, queue: Path, **extra: str
) -> dict[str, str]:
    """Environment of `ontwatch agent` for a POP: its name, token file, queue, the centre."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env.update(
        ONTWATCH_CENTRAL_URL=central_url,
        ONTWATCH_AGENT_NAME=pop.name,
        ONTWATCH_AGENT_TOKEN_FILE=str(token_file),
        ONTWATCH_AGENT_QUEUE=str(queue),
        ONTWATCH_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class AgentProcess:
    """`ontwatch agent` inside a POP's namespace, in its own process group."""

    def __init__(self, pop: Pop, env: dict[str, str], log: Path) -> None:
        self.pop = pop
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", pop.ns, sys.executable, "-m", "ontwatch.cli", "agent"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: killed whole, whatever it spawned
            )

    def alive(self) -> bool:
        """The process still runs."""
        return self.proc.poll() is None

    def tail(self) -> str:
        """The end of its log, for failure messages."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill9(self) -> None:
        """kill -9 the agent (its whole process group), as a crash or power loss would."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> int | None:
        """Stop it cleanly (SIGTERM), or kill it when it does not stop in time."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self._signal_group(signal.SIGKILL)  # anything left in its group
        return self.proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


__all__ = [
    "LINK_RANGE",
    "ONT_RANGE",
    "AgentProcess",
    "Guard",
    "Pop",
    "Silencer",
    "agent_env",
    "link_cut",
    "ont_addresses",
    "pop_namespace",
    "root_guard",
    "silencer",
]
