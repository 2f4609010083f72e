"""fping-style ICMP sweep: one socket, paced sends, replies matched as they arrive, one deadline."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType

from monitor.icmp_echo import (
    ANCILLARY_SIZE,
    DEFAULT_PAYLOAD,
    EchoTemplate,
    describe_oserror,
    detect_icmp_mode,
    kernel_timestamp,
    open_icmp_socket,
    parse_echo_reply,
    probe_icmp_mode,
)

__all__ = ["ProbeResult", "SweepResult", "Sweeper", "detect_icmp_mode", "probe_icmp_mode"]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Bounds that keep a misconfiguration from turning into a flood or a hang.
MAX_TIMEOUT = 60.0
MAX_RATE = 1_000_000.0
# Replies read per wake-up of the reader, so one callback never holds the loop for long.
_READS_PER_WAKEUP = 2048
_YIELD_EVERY = 2000  # addresses handled between two yields to the event loop (parse, results)
# A full send queue (EAGAIN/ENOBUFS) is retried after a short pause; at most this many
# pauses per sweep, after which such errors fail their probe at once.
_TRANSIENT_SEND_ERRORS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR})
_MAX_SEND_PAUSES = 200
_SEND_RETRY_PAUSE = 0.001


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of one echo: replied or not, RTT in ms, or why no echo could be sent."""

    address: str
    replied: bool
    rtt_ms: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class SweepResult:
    """All probe results of one sweep, keyed by address as given, with counts."""

    results: Mapping[str, ProbeResult]
    started: float  # wall-clock epoch seconds
    duration: float  # seconds, monotonic
    sent: int  # echoes the kernel accepted
    replied: int
    errors: int  # addresses that got no echo: invalid, refused, socket or send error


def _parse_ip(text: str) -> tuple[IPAddress, str] | None:
    """Parse an address; return it with its canonical text, or None if it is not one."""
    # inet_pton is the strict dotted-quad parser and much cheaper than ipaddress's, which
    # matters at tens of thousands of targets per sweep; IPv6 takes the general path.
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError):
        pass
    else:
        return ipaddress.IPv4Address(packed), socket.inet_ntop(socket.AF_INET, packed)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.scope_id:
        return None  # link-local with a zone: not something an ONT inventory holds
    return ip, ip.compressed


def _same_ip(source: str, ip: IPAddress) -> bool:
    """Whether a reply's source address is ip, when the text differs only in spelling."""
    try:
        return ipaddress.ip_address(source.split("%")[0]) == ip
    except ValueError:
        return False


class _Sweep:
    """Book-keeping of one sweep in flight; the reader callback fills it in."""

    __slots__ = (
        "addrs",
        "all_sent",
        "done",
        "error",
        "ident",
        "outstanding",
        "rtt",
        "sent_at",
        "seq_base",
        "strict_ident",
        "texts",
        "token",
    )

    def __init__(
        self, addrs: list[IPAddress], texts: list[str], token: bytes, seq_base: int
    ) -> None:
        n = len(addrs)
        self.addrs = addrs
        self.texts = texts  # canonical text of each address, as recvfrom reports sources
        self.token = token
        self.seq_base = seq_base
        self.ident: dict[int, int] = {}  # version -> identifier we set (raw sockets only)
        self.strict_ident: dict[int, bool] = {}
        self.sent_at: list[float | None] = [None] * n
        self.rtt: list[float | None] = [None] * n
        self.error: list[str] = [""] * n
        self.all_sent = False
        self.outstanding = 0  # echoes sent and not yet answered
        self.done: asyncio.Future[None] | None = None

    def wake_if_done(self) -> None:
        """Let the sweep finish early once every echo sent has been answered."""
        done = self.done
        if self.all_sent and self.outstanding == 0 and done is not None and not done.done():
            done.set_result(None)


class Sweeper:
    """Sends one ICMP echo to every address over one socket per family and collects replies."""

    def __init__(
        self,
        *,
        timeout: float = 1.0,
        rate_per_s: float = 50_000,
        privileged: bool | None = None,
        burst: int | None = None,
        payload_size: int = DEFAULT_PAYLOAD,
        allowed: Callable[[IPAddress], bool] | None = None,
    ) -> None:
        """timeout counts from the last send; allowed, if given, vetoes targets (test guard)."""
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT}] s")
        if not 0 < rate_per_s <= MAX_RATE:
            raise ValueError(f"rate_per_s must be in (0, {MAX_RATE:.0f}]")
        self.timeout = float(timeout)
        self.rate_per_s = float(rate_per_s)
        # At most this many echoes back to back before the loop gets a turn: about one
        # millisecond's worth, so a sweep never holds the event loop longer than that.
        self.burst = burst if burst is not None else max(1, math.ceil(rate_per_s / 1000))
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        EchoTemplate(4, 0, bytes(8), payload_size)  # validates payload_size early
        self.payload_size = payload_size
        self._allowed = allowed
        self._detect = privileged is None
        self.mode: str
        self.mode_reason: str
        if privileged is None:
            self.mode, self.mode_reason = probe_icmp_mode()
            log.info("ICMP sweep mode %s: %s", self.mode, self.mode_reason)
        else:
            self.mode = "raw" if privileged else "datagram"
            self.mode_reason = "chosen by the caller"
        self._socks: dict[int, tuple[socket.socket, bool]] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets; the sweeper cannot be used afterwards."""
        self._closed = True
        for sock, _ in self._socks.values():
            sock.close()
        self._socks.clear()

    def _socket(self, version: int) -> tuple[socket.socket, bool]:
        """The open socket for an IP version, opened on first use and kept across sweeps."""
        if version not in self._socks:
            if self.mode == "none" and self._detect:
                # Capabilities or the sysctl may have been fixed since start-up.
                self.mode, self.mode_reason = probe_icmp_mode()
            if self.mode == "none":
                raise OSError(f"no ICMP socket available: {self.mode_reason}")
            self._socks[version] = open_icmp_socket(version, self.mode == "raw")
        return self._socks[version]

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        """Probe each distinct address once; errors mark single probes and never raise."""
        if self._closed:
            raise RuntimeError("Sweeper is closed")
        async with self._lock:
            return await self._sweep(addresses)

    async def _sweep(self, addresses: Sequence[str]) -> SweepResult:
        started = time.time()
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()

        # Distinct targets in input order; several spellings of one IP share one echo.
        index_of: dict[str, int] = {}
        texts: list[str] = []
        key_index: dict[str, int] = {}
        bad: dict[str, str] = {}
        addrs: list[IPAddress] = []
        for n, key in enumerate(addresses, start=1):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # 10,000 parses hold the loop ~20 ms: let it breathe
            if key in key_index or key in bad:
                continue
            parsed = _parse_ip(key)
            if parsed is None:
                bad[key] = "not an IP address"
                continue
            ip, text = parsed
            if self._allowed is not None and not self._allowed(ip):
                bad[key] = "refused: target not allowed"
                continue
            if text not in index_of:
                index_of[text] = len(addrs)
                addrs.append(ip)
                texts.append(text)
            key_index[key] = index_of[text]

        state = _Sweep(addrs, texts, os.urandom(8), random.getrandbits(16))
        state.done = loop.create_future()
        readers: list[int] = []
        socks: dict[int, tuple[socket.socket, bool]] = {}
        try:
            for version in sorted({ip.version for ip in addrs}):
                try:
                    sock, stamped = self._socket(version)
                except OSError as exc:
                    reason = f"socket: {describe_oserror(exc)}" if exc.errno else str(exc)
                    for i, ip in enumerate(addrs):
                        if ip.version == version:
                            state.error[i] = reason
                    continue
                socks[version] = (sock, stamped)
                raw = self.mode == "raw"
                # With a datagram ICMP socket the kernel puts its own identifier (the
                # socket's port) in every echo and demultiplexes replies by it, so only a
                # raw socket's identifier is ours to set and check.
                state.ident[version] = random.getrandbits(16) if raw else 0
                state.strict_ident[version] = raw
                self._discard_queued(sock)
                loop.add_reader(sock.fileno(), self._on_readable, state, version, sock, stamped)
                readers.append(sock.fileno())

            last_send = await self._send_all(state, socks)
            state.all_sent = True
            state.wake_if_done()
            # One deadline for the whole sweep: `timeout` after the last echo went out.
            remaining = last_send + self.timeout - time.perf_counter()
            if state.outstanding and remaining > 0:
                await asyncio.wait({state.done}, timeout=remaining)
            # Replies already queued in the kernel arrived before the deadline; count them.
            for version, (sock, stamped) in socks.items():
                self._on_readable(state, version, sock, stamped)
        finally:
            for fd in readers:
                loop.remove_reader(fd)
            if state.done is not None and not state.done.done():
                state.done.cancel()

        duration = time.perf_counter() - t0
        per_target: list[ProbeResult | None] = [None] * len(addrs)
        results: dict[str, ProbeResult] = {}
        for n, key in enumerate(addresses, start=1):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if key in results:
                continue
            if key in bad:
                results[key] = ProbeResult(key, False, None, bad[key])
                continue
            i = key_index[key]
            rtt, err = state.rtt[i], state.error[i]
            results[key] = ProbeResult(key, rtt is not None, rtt, "" if rtt is not None else err)
            per_target[i] = results[key]
        sent = sum(1 for t in state.sent_at if t is not None)
        replied = sum(1 for r in state.rtt if r is not None)
        errors = len(bad) + sum(1 for e in state.error if e)
        return SweepResult(MappingProxyType(results), started, duration, sent, replied, errors)

    async def _send_all(
        self, state: _Sweep, socks: Mapping[int, tuple[socket.socket, bool]]
    ) -> float:
        """Send the echoes paced at rate_per_s, at most `burst` per turn; return last send time."""
        templates = {
            v: EchoTemplate(v, state.ident[v], state.token, self.payload_size) for v in socks
        }
        n = len(state.addrs)
        rate, burst = self.rate_per_s, self.burst
        start = time.perf_counter()
        last_send = start
        i = 0
        pauses = 0
        while i < n:
            # Token bucket without memory: what is due by now, capped at one burst, so a
            # late wake-up catches up a little but never floods.
            due = int((time.perf_counter() - start) * rate) + 1 - i
            stop = min(n, i + max(1, min(due, burst)))
            blocked = False
            while i < stop:
                ip = state.addrs[i]
                if state.error[i]:  # no socket for this family
                    i += 1
                    continue
                sock = socks[ip.version][0]
                packet = templates[ip.version].build(state.seq_base + i, i)
                target = (state.texts[i], 0)
                sent_at = time.time()
                try:
                    sock.sendto(packet, target)
                except OSError as exc:
                    # A full send queue is transient: pause and retry this probe, within one
                    # budget per sweep so a stuck socket cannot stretch the sweep unbounded.
                    if exc.errno in _TRANSIENT_SEND_ERRORS and pauses < _MAX_SEND_PAUSES:
                        pauses += 1
                        blocked = True
                        break
                    state.error[i] = f"sendto: {describe_oserror(exc)}"
                else:
                    state.sent_at[i] = sent_at
                    state.outstanding += 1
                    last_send = time.perf_counter()
                i += 1
            if i >= n:
                break
            if blocked:
                await asyncio.sleep(_SEND_RETRY_PAUSE)
                continue
            wait = i / rate - (time.perf_counter() - start)
            # The loop's timers round up to a millisecond; for a shorter wait just let the
            # readers run and come straight back.
            await asyncio.sleep(wait if wait >= 0.0005 else 0)
        return last_send

    @staticmethod
    def _discard_queued(sock: socket.socket) -> None:
        """Drop replies left over from an earlier sweep (bounded: the buffer is finite)."""
        for _ in range(1_000_000):
            try:
                sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue

    @staticmethod
    def _on_readable(state: _Sweep, version: int, sock: socket.socket, stamped: bool) -> None:
        """Read queued replies and match them by token, index, sequence, source (and id)."""
        with_ip_header = version == 4 and state.strict_ident[version]
        strict = state.strict_ident[version]
        ident = state.ident[version]
        addrs, texts, n = state.addrs, state.texts, len(state.addrs)
        anc = ANCILLARY_SIZE if stamped else 0
        for _ in range(_READS_PER_WAKEUP):
            try:
                packet, ancdata, _flags, source = sock.recvmsg(2048, anc)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # A datagram ICMP socket can surface an ICMP error (e.g. EHOSTUNREACH)
                # here; it says nothing about which probe, so it is only logged.
                log.debug("recv on ICMPv%d socket: %s", version, describe_oserror(exc))
                continue
            arrived = (kernel_timestamp(ancdata) if stamped else None) or time.time()
            reply = parse_echo_reply(packet, version, with_ip_header)
            if reply is None or reply.token != state.token:
                continue
            i = reply.index
            if i >= n or reply.sequence != (state.seq_base + i) & 0xFFFF:
                continue
            if strict and reply.ident != ident:
                continue
            sent_at = state.sent_at[i]
            if sent_at is None or state.rtt[i] is not None:
                continue
            src = source[0]
            if src != texts[i] and not _same_ip(src, addrs[i]):
                continue
            state.rtt[i] = max(0.0, (arrived - sent_at) * 1000.0)
            state.outstanding -= 1
        state.wake_if_done()
