"""Test helpers for real packet loss: nftables tables and network namespaces, always removed after.

Everything here needs root and the `nft` / `ip` tools (Debian: `apt-get install -y nftables
iproute2`); `missing_privileges()` says why a test must be skipped instead.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

# Every tool call is bounded; a hung nft/ip must fail the test, not hang CI.
_TOOL_TIMEOUT = 20.0


def is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Guard for Sweeper(allowed=...): only 127.0.0.0/8 and ::1 may be probed from tests."""
    return ip.is_loopback


def require_loopback(addresses: Iterable[str]) -> None:
    """Raise ValueError if any address is not loopback: tests never probe other hosts."""
    for text in addresses:
        if not ipaddress.ip_address(text).is_loopback:
            raise ValueError(f"refusing to probe non-loopback address {text!r}")


def missing_privileges(*tools: str) -> str | None:
    """Why nftables/netns tests cannot run here (not root, tool missing), or None if they can."""
    if os.geteuid() != 0:
        return "needs root to change nftables rules / network namespaces"
    for tool in tools or ("nft",):
        if shutil.which(tool) is None:
            package = {"nft": "nftables", "ip": "iproute2", "fping": "fping"}.get(tool, tool)
            return f"`{tool}` not found (apt-get install -y {package})"
    caps = _effective_capabilities()
    if "ip" in tools and not caps & (1 << _CAP_SYS_ADMIN):
        return "needs CAP_SYS_ADMIN to create a network namespace"
    if "nft" in (tools or ("nft",)):
        # Root without CAP_NET_ADMIN, or a kernel/container without nf_tables, fails here.
        try:
            probe = subprocess.run(
                ["nft", "list", "tables"], capture_output=True, text=True, timeout=_TOOL_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"nft does not work here: {exc}"
        if probe.returncode != 0:
            return f"nft does not work here: {probe.stderr.strip()[:200]}"
    return None


_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21


def _effective_capabilities() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=_TOOL_TIMEOUT, check=True
    )


@contextmanager
def nft_table(body: str, family: str = "inet", prefix: str = "ontwatch_test") -> Iterator[str]:
    """Create `table <family> <unique name> { body }` for the block's duration; yield its name."""
    # A unique name per use: parallel test runs on one machine never delete each other's rules.
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run(["nft", "-f", "-"], stdin=f"table {family} {name} {{\n{body}\n}}\n")
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"nft refused the ruleset: {exc.stderr.strip()}") from exc
    try:
        yield name
    finally:
        subprocess.run(
            ["nft", "delete", "table", family, name],
            capture_output=True,
            timeout=_TOOL_TIMEOUT,
            check=False,
        )


def silence_rule(daddr: str) -> str:
    """Chain body that drops echo requests to daddr where they are received, so it is silence.

    Dropping on the input hook, not output: a packet dropped on output makes sendto()
    fail with EPERM, which is an error, not a host that does not answer.
    """
    return (
        "chain in { type filter hook input priority -10; policy accept;\n"
        f"  ip daddr {daddr} icmp type echo-request drop\n"
        "}"
    )


def reject_send_rule(daddr: str) -> str:
    """Chain body that drops echo requests to daddr on output, so sendto() fails with EPERM."""
    return (
        "chain out { type filter hook output priority -10; policy accept;\n"
        f"  ip daddr {daddr} icmp type echo-request drop\n"
        "}"
    )


@contextmanager
def netns(prefix: str = "owtest") -> Iterator[str]:
    """A fresh network namespace with lo up, deleted after; yield its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        subprocess.run(
            ["ip", "netns", "del", name], capture_output=True, timeout=_TOOL_TIMEOUT, check=False
        )


def netns_exec(
    name: str, argv: Sequence[str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run argv inside namespace `name` (bounded in time); the result is returned, not checked."""
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv], capture_output=True, text=True, timeout=timeout
    )
