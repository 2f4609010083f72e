"""The ICMP sweep on real loopback sockets; silence and send errors made real by nftables."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import resource
import socket
import struct
import sys
from pathlib import Path

import pytest

from monitor.icmp_echo import (
    ECHO_REPLY,
    EchoTemplate,
    checksum,
    detect_icmp_mode,
    parse_echo_reply,
    probe_icmp_mode,
)
from monitor.sweep import ProbeResult, Sweeper, SweepResult
from tests.netfilter import (
    is_loopback,
    missing_privileges,
    netns,
    netns_exec,
    nft_table,
    reject_send_rule,
    require_loopback,
    silence_rule,
)

REPO = Path(__file__).resolve().parents[2]
MODE = detect_icmp_mode()
needs_icmp = pytest.mark.skipif(
    MODE == "none", reason=f"no ICMP socket allowed: {probe_icmp_mode().reason}"
)


def _nft_skip() -> str | None:
    return missing_privileges("nft")


needs_nft = pytest.mark.skipif(_nft_skip() is not None, reason=_nft_skip() or "")
privileged = pytest.mark.privileged


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_sweeper(**kwargs: object) -> Sweeper:
    """A Sweeper whose guard refuses every non-loopback target: tests never probe others."""
    return Sweeper(allowed=is_loopback, **kwargs)  # type: ignore[arg-type]


async def sweep(sweeper: Sweeper, addresses: list[str]) -> SweepResult:
    require_loopback(a for a in addresses if _is_ip(a))
    # Bounded: a sweep that hangs fails the test instead of the CI job.
    return await asyncio.wait_for(sweeper.sweep(addresses), timeout=30)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# --- wire format -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize(
    ("sequence", "index"), [(0, 0), (1, 1), (0xFFFF, 70_000), (0x1_0005, 2**32 - 1)]
)
def test_echo_request_checksum_and_fields(version: int, sequence: int, index: int) -> None:
    token = bytes(range(1, 9))
    packet = EchoTemplate(version, 0xBEEF, token, 56).build(sequence, index)
    assert len(packet) == 8 + 56
    assert checksum(packet) == 0  # a correct Internet checksum sums to zero over the packet
    kind, code, _, ident, seq = struct.unpack_from("!BBHHH", packet)
    assert (kind, code, ident, seq) == ({4: 8, 6: 128}[version], 0, 0xBEEF, sequence & 0xFFFF)
    assert packet[8:16] == token
    assert struct.unpack_from("!I", packet, 16)[0] == index


def test_parse_echo_reply_with_and_without_ip_header() -> None:
    token = os.urandom(8)
    request = bytearray(EchoTemplate(4, 7, token, 56).build(42, 1234))
    request[0] = ECHO_REPLY[4]  # what the host sends back: same body, type 0
    ip_header = bytes([0x45]) + bytes(19)
    for data, with_header in ((bytes(request), False), (ip_header + bytes(request), True)):
        reply = parse_echo_reply(data, 4, with_header)
        assert reply is not None
        assert (reply.ident, reply.sequence, reply.token, reply.index) == (7, 42, token, 1234)
    # Our own echo request (type 8) and a truncated packet are not replies.
    assert parse_echo_reply(EchoTemplate(4, 7, token, 56).build(1, 1), 4, False) is None
    assert parse_echo_reply(bytes(request[:15]), 4, False) is None


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"timeout": 0}, {"timeout": 120}, {"rate_per_s": 0}, {"payload_size": 4}):
        with pytest.raises(ValueError):
            Sweeper(privileged=True, **kwargs)  # type: ignore[arg-type]


def test_loopback_guard_refuses_other_networks() -> None:
    for outside in ("10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::1"):  # never sent: refused
        assert not is_loopback(ipaddress.ip_address(outside))
        with pytest.raises(ValueError):
            require_loopback([outside])
    assert is_loopback(ipaddress.ip_address("127.200.3.4"))


def test_detect_mode_names_one_of_three_with_a_reason() -> None:
    mode, reason = probe_icmp_mode()
    assert mode in {"raw", "datagram", "none"}
    assert reason
    assert detect_icmp_mode() == mode


# --- real sockets on loopback ------------------------------------------------------------------


@needs_icmp
async def test_every_loopback_host_answers_in_one_sweep() -> None:
    hosts = [f"127.1.{i // 200}.{i % 200 + 1}" for i in range(2_000)]
    addresses = [*hosts, "127.0.0.1", hosts[0], hosts[5]]  # duplicates allowed
    with loopback_sweeper(timeout=2.0) as sweeper:
        assert sweeper.mode == MODE
        result = await sweep(sweeper, addresses)
    assert set(result.results) == set(addresses)
    assert result.sent == len(hosts) + 1  # one echo per distinct address
    assert result.replied == result.sent
    assert result.errors == 0
    for address, probe in result.results.items():
        assert probe.address == address
        assert probe.replied, probe
        assert probe.rtt_ms is not None and probe.rtt_ms >= 0
        assert probe.error == ""


@needs_icmp
async def test_bad_and_refused_addresses_fail_alone() -> None:
    def guard(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return ip.is_loopback and str(ip) != "127.0.0.2"

    with Sweeper(timeout=1.0, allowed=guard) as sweeper:
        result = await sweep(sweeper, ["not-an-ip", "127.0.0.2", "127.0.0.1", "127.000.0.1"])
    got = result.results
    assert got["not-an-ip"] == ProbeResult("not-an-ip", False, None, "not an IP address")
    assert got["127.0.0.2"].error.startswith("refused")
    assert got["127.000.0.1"].error == "not an IP address"  # leading zeros: ambiguous, refused
    assert got["127.0.0.1"].replied
    assert (result.sent, result.replied, result.errors) == (1, 1, 3)


@needs_icmp
@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 on this host")
async def test_ipv6_loopback_answers_next_to_ipv4() -> None:
    with loopback_sweeper(timeout=1.0) as sweeper:
        result = await sweep(sweeper, ["::1", "0:0::1", "127.0.0.1"])
    assert all(p.replied for p in result.results.values()), result
    assert result.sent == 2  # ::1 and 0:0::1 are one host


@needs_icmp
async def test_sweeps_in_a_row_reuse_the_socket_and_stay_apart() -> None:
    hosts = [f"127.1.9.{i}" for i in range(1, 101)]
    with loopback_sweeper(timeout=1.0) as sweeper:
        first = await sweep(sweeper, hosts)
        second = await sweep(sweeper, hosts[:50])
    assert first.replied == 100
    assert second.replied == 50 and set(second.results) == set(hosts[:50])


@needs_icmp
async def test_two_sweepers_at_once_do_not_take_each_others_replies() -> None:
    # Raw sockets each get a copy of every echo reply; matching must keep them apart.
    a_hosts = [f"127.1.20.{i}" for i in range(1, 201)]
    b_hosts = [f"127.1.20.{i}" for i in range(101, 251)]
    with loopback_sweeper(timeout=2.0) as a, loopback_sweeper(timeout=2.0) as b:
        ra, rb = await asyncio.gather(sweep(a, a_hosts), sweep(b, b_hosts))
    assert (ra.sent, ra.replied) == (200, 200)
    assert (rb.sent, rb.replied) == (150, 150)


@needs_icmp
async def test_a_refused_send_fails_only_that_probe_without_nftables() -> None:
    # 127.255.255.255 is lo's broadcast address: the kernel refuses the echo (EACCES).
    with loopback_sweeper(timeout=1.0) as sweeper:
        result = await sweep(sweeper, ["127.0.0.1", "127.255.255.255", "127.1.60.1"])
    assert "EACCES" in result.results["127.255.255.255"].error
    assert not result.results["127.255.255.255"].replied
    assert result.results["127.0.0.1"].replied and result.results["127.1.60.1"].replied
    assert (result.sent, result.replied, result.errors) == (2, 2, 1)


@needs_icmp
async def test_an_empty_sweep_is_empty() -> None:
    with loopback_sweeper() as sweeper:
        result = await sweep(sweeper, [])
    assert (dict(result.results), result.sent, result.replied, result.errors) == ({}, 0, 0, 0)


async def test_sweep_after_close_is_an_error() -> None:
    sweeper = Sweeper(privileged=True)
    sweeper.close()
    with pytest.raises(RuntimeError):
        await sweeper.sweep(["127.0.0.1"])


# --- nftables: real silence and real send errors ----------------------------------------------


@needs_icmp
@needs_nft
@privileged
async def test_silent_hosts_time_out_together_while_others_answer() -> None:
    silent = [f"127.2.{i // 100}.{i % 100 + 1}" for i in range(200)]
    answering = [f"127.1.30.{i}" for i in range(1, 201)]
    mixed = [x for pair in zip(silent, answering, strict=True) for x in pair]
    timeout = 0.5
    with nft_table(silence_rule("127.2.0.0/16")), loopback_sweeper(timeout=timeout) as sweeper:
        result = await sweep(sweeper, mixed)
    for address in silent:
        assert result.results[address] == ProbeResult(address, False, None, "")
    for address in answering:
        assert result.results[address].replied
    assert (result.sent, result.replied, result.errors) == (400, 200, 0)
    # One deadline for the whole sweep, not one per host or per batch: 200 silent hosts
    # waited on one by one, or 50 at a time, would take 100 s or 2 s.
    assert timeout <= result.duration < timeout + 1.0


@needs_icmp
@needs_nft
@privileged
async def test_a_send_error_fails_only_that_probe() -> None:
    hosts = ["127.1.40.1", "127.3.0.1", "127.1.40.2"]
    with nft_table(reject_send_rule("127.3.0.1")), loopback_sweeper(timeout=1.0) as sweeper:
        result = await sweep(sweeper, hosts)
    bad = result.results["127.3.0.1"]
    assert not bad.replied and "EPERM" in bad.error
    assert result.results["127.1.40.1"].replied and result.results["127.1.40.2"].replied
    assert (result.sent, result.replied, result.errors) == (2, 2, 1)


@needs_icmp
async def test_running_out_of_file_descriptors_fails_probes_not_the_sweep() -> None:
    sweeper = loopback_sweeper(timeout=0.5)  # detection done; the socket opens on first sweep
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, hard))
        # Use up every free descriptor below the limit, bounded by the limit itself.
        for _ in range(highest + 16):
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        starved = await sweep(sweeper, ["127.0.0.1", "127.1.50.1"])
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert (starved.sent, starved.replied, starved.errors) == (0, 0, 2)
        assert all("EMFILE" in p.error for p in starved.results.values()), starved
        recovered = await sweep(sweeper, ["127.0.0.1", "127.1.50.1"])
        assert recovered.replied == 2
    finally:
        sweeper.close()


# --- other modes, in a namespace of our own -----------------------------------------------------

_CHILD = """
import asyncio, json, sys
from monitor.sweep import Sweeper
async def main():
    sweeper = Sweeper(timeout=0.5, allowed=lambda ip: ip.is_loopback)
    r = await asyncio.wait_for(sweeper.sweep(["127.0.0.1", "127.4.0.1"]), 10)
    print(json.dumps({"mode": sweeper.mode, "reason": sweeper.mode_reason,
                      "replied": r.replied, "errors": r.errors,
                      "error": r.results["127.0.0.1"].error}))
asyncio.run(main())
"""


@privileged
@pytest.mark.skipif(
    missing_privileges("ip", "setpriv") is not None,
    reason=missing_privileges("ip", "setpriv") or "",
)
@pytest.mark.parametrize(
    ("group_range", "mode", "replied"), [("0 0", "datagram", 2), ("1 0", "none", 0)]
)
async def test_without_cap_net_raw_datagram_or_none_by_ping_group_range(
    group_range: str, mode: str, replied: int
) -> None:
    # net.ipv4.ping_group_range is per network namespace, so changing it here leaves the
    # host alone; setpriv drops CAP_NET_RAW for the child the way the systemd unit would
    # without AmbientCapabilities.
    with netns() as ns:
        sysctl = netns_exec(ns, ["sysctl", "-qw", f"net.ipv4.ping_group_range={group_range}"])
        assert sysctl.returncode == 0, sysctl.stderr
        child = netns_exec(
            ns,
            [
                "setpriv",
                "--inh-caps=-net_raw",
                "--bounding-set=-net_raw",
                "env",
                f"PYTHONPATH={REPO}",
                sys.executable,
                "-c",
                _CHILD,
            ],
            timeout=60,
        )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["mode"] == mode, report
    assert report["replied"] == replied, report
    if mode == "none":
        assert report["errors"] == 2
        assert "ping_group_range" in report["error"]
