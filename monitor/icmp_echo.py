"""ICMP echo on the wire: mode detection, one non-blocking socket per family, packets."""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from typing import NamedTuple

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}

# Our payload: an 8-byte token chosen per sweep, then the 4-byte index of the target in
# the sweep, then padding up to fping's default of 56 data bytes (same wire size, fair
# comparison). The token rejects late replies of an earlier sweep and other pingers'
# replies that a raw socket also sees; the index finds the target without a dict.
TOKEN_SIZE = 8
MIN_PAYLOAD = TOKEN_SIZE + 4
DEFAULT_PAYLOAD = 56

# Linux constants Python does not export. SO_TIMESTAMPNS gives the kernel's arrival time
# of each reply, so an RTT does not include however long the asyncio loop took to read it.
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMPNS = 35  # asm-generic value; alpha/mips/parisc/sparc differ, so guarded below
_TIMESTAMPNS_ARCHES = {
    "x86_64",
    "i686",
    "i386",
    "aarch64",
    "arm64",
    "armv7l",
    "riscv64",
    "ppc64le",
    "s390x",
    "loongarch64",
}
_TIMESPEC = struct.Struct("@ll")
RECV_BUFFER = 4 * 1024 * 1024


class IcmpMode(NamedTuple):
    """Which kind of ICMP socket this process may open, and why, for a log line."""

    mode: str  # "raw" | "datagram" | "none"
    reason: str


def _ping_group_range() -> str:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            return " ".join(f.read().split())
    except OSError:
        return "unknown"


def probe_icmp_mode() -> IcmpMode:
    """Find out by opening (and closing) a socket whether raw or datagram ICMP is allowed."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return IcmpMode("raw", "raw ICMP socket allowed (root or CAP_NET_RAW)")
    except PermissionError:
        pass
    except OSError as exc:
        return IcmpMode("none", f"cannot open an ICMP socket: {describe_oserror(exc)}")
    gid, groups = os.getgid(), _ping_group_range()
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
        return IcmpMode(
            "datagram",
            f"no CAP_NET_RAW; unprivileged ICMP allowed (gid {gid} in "
            f"net.ipv4.ping_group_range {groups})",
        )
    except OSError as exc:
        return IcmpMode(
            "none",
            f"no CAP_NET_RAW and gid {gid} outside net.ipv4.ping_group_range {groups} "
            f"({describe_oserror(exc)}); grant CAP_NET_RAW or widen the sysctl",
        )


def detect_icmp_mode() -> str:
    """Return "raw", "datagram" or "none"; probe_icmp_mode() also gives the reason."""
    return probe_icmp_mode().mode


def describe_oserror(exc: OSError) -> str:
    """Short text for an OSError: errno name and message, e.g. 'EPERM Operation not permitted'."""
    if exc.errno is None:
        return str(exc) or type(exc).__name__
    name = errno.errorcode.get(exc.errno, f"errno {exc.errno}")
    return f"{name} {exc.strerror or os.strerror(exc.errno)}"


def kernel_timestamps_supported() -> bool:
    """Whether the SO_TIMESTAMPNS value hard-coded here is right for this platform."""
    return sys.platform == "linux" and os.uname().machine in _TIMESTAMPNS_ARCHES


def open_icmp_socket(version: int, privileged: bool) -> tuple[socket.socket, bool]:
    """Open a non-blocking ICMP socket; return it and whether it stamps arrival times."""
    family, proto = (
        (socket.AF_INET, socket.IPPROTO_ICMP)
        if version == 4
        else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    )
    sock = socket.socket(family, socket.SOCK_RAW if privileged else socket.SOCK_DGRAM, proto)
    try:
        sock.setblocking(False)
        # Replies of a whole sweep can queue up between two reads; the default buffer
        # (about 200 KiB) holds only a few hundred skbs. FORCE needs CAP_NET_ADMIN, so
        # fall back to the plain option, which the kernel caps at net.core.rmem_max.
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECV_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        if privileged:
            # A raw socket gets a copy of every ICMP packet the host receives, including
            # our own echo requests looping back on lo; let the kernel keep only replies.
            if version == 4:
                blocked = 0xFFFFFFFF & ~(1 << ECHO_REPLY[4])
                sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("@I", blocked))
            else:
                words = [0xFFFFFFFF] * 8
                words[ECHO_REPLY[6] >> 5] &= ~(1 << (ECHO_REPLY[6] & 31)) & 0xFFFFFFFF
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("@8I", *words))
        stamped = False
        if kernel_timestamps_supported():
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                stamped = True
            except OSError:
                stamped = False
        return sock, stamped
    except BaseException:
        sock.close()
        raise


def kernel_timestamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """Arrival time (epoch seconds) from SO_TIMESTAMPNS ancillary data, if present."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return None


ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)


class EchoTemplate:
    """Builds echo requests for one sweep fast: only sequence and index change per packet."""

    __slots__ = ("_base", "_head", "_pad", "_token", "_type", "ident", "token")

    def __init__(self, version: int, ident: int, token: bytes, payload_size: int) -> None:
        if len(token) != TOKEN_SIZE:
            raise ValueError("token must be 8 bytes")
        if payload_size < MIN_PAYLOAD or payload_size % 2:
            raise ValueError(f"payload_size must be even and >= {MIN_PAYLOAD}")
        self._type = ECHO_REQUEST[version]
        self.ident = ident & 0xFFFF
        self.token = token
        self._pad = bytes(payload_size - MIN_PAYLOAD)
        # One's-complement sum of the fixed 16-bit words (type/code, identifier, token);
        # the zero padding adds nothing. Per packet only sequence and index are added.
        fixed = struct.pack("!BBH", self._type, 0, self.ident) + token
        self._base = sum(struct.unpack(f"!{len(fixed) // 2}H", fixed))

    def build(self, sequence: int, index: int) -> bytes:
        """Echo request with this sequence number and target index, checksum filled in."""
        seq = sequence & 0xFFFF
        total = self._base + seq + (index >> 16) + (index & 0xFFFF)
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        return (
            struct.pack("!BBHHH", self._type, 0, ~total & 0xFFFF, self.ident, seq)
            + self.token
            + struct.pack("!I", index)
            + self._pad
        )


def checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071) of data, used to check packets in tests."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class EchoReply(NamedTuple):
    """The fields of an echo reply the sweeper matches on."""

    ident: int
    sequence: int
    token: bytes
    index: int


def parse_echo_reply(packet: bytes, version: int, with_ip_header: bool) -> EchoReply | None:
    """Parse an echo reply (IPv4 raw sockets include the IP header); None if not one of ours."""
    offset = 0
    if with_ip_header:
        if not packet:
            return None
        offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8 + MIN_PAYLOAD:
        return None
    kind, code, _sum, ident, seq = struct.unpack_from("!BBHHH", packet, offset)
    if kind != ECHO_REPLY[version] or code != 0:
        return None
    start = offset + 8
    token = packet[start : start + TOKEN_SIZE]
    (index,) = struct.unpack_from("!I", packet, start + TOKEN_SIZE)
    return EchoReply(ident, seq, token, index)
