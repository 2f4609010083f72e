"""Idle and slow connections cannot starve the service (issue 10, finding 4).

Bounded and loopback only: at most 300 idle sockets, every socket closed in `finally`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ontwatch.connections import IDLE_TIMEOUT, connection_cap
from tests.e2e.harness import figure
from tests.process import ROOT, ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.e2e]

IDLE = 300


@contextlib.contextmanager
def idle_sockets(port: int, n: int) -> Iterator[list[socket.socket]]:
    """n loopback connections that never send a byte; always closed."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def closed_by_server(s: socket.socket, wait: float) -> bool:
    """True when the server closed (or answered and closed) this socket within `wait` s."""
    s.settimeout(wait)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_and_slow_sockets_are_closed_and_requests_still_answered(tmp_path: Path) -> None:
    svc = ServiceProcess(service_env(tmp_path / "db.sqlite", free_port()), log=tmp_path / "log")
    try:
        assert svc.request("POST", "/api/onts", {"id": "1", "name": "A", "area": "A"})[0] in (
            200,
            201,
        )
        with idle_sockets(svc.port, IDLE) as socks:
            slow = socks[0]
            started = time.monotonic()
            for _ in range(5):  # requests are answered while 300 sockets sit idle
                t0 = time.monotonic()
                code, _ = svc.request("POST", "/api/ont-status/1", {"status": "ON"})
                assert code == 200 and time.monotonic() - t0 < 2.0
            slow.sendall(b"GET /api/stats HTTP/1.1\r\n")  # a head that never ends
            for s in socks[1:]:
                assert closed_by_server(s, IDLE_TIMEOUT + 5 - (time.monotonic() - started))
            assert closed_by_server(slow, 3.0)
            elapsed = time.monotonic() - started
            figure(
                "FAULT idle-sockets", idle=IDLE, pushes_answered=5, closed_after_s=f"{elapsed:.1f}"
            )
            assert IDLE_TIMEOUT - 1 <= elapsed <= IDLE_TIMEOUT + 5
        deadline = time.monotonic() + 5
        while open_fds(svc.proc.pid) > 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_fds(svc.proc.pid) <= 60
        assert svc.request("GET", "/healthz")[0] == 200
    finally:
        svc.stop()


def _limited(soft: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))


def test_connections_beyond_the_cap_get_503_and_one_log_line(tmp_path: Path) -> None:
    """Open-file limit 256: the cap is below it, extra sockets get 503, the log stays small."""
    soft = 256
    cap = connection_cap(soft)
    assert cap < soft
    port = free_port()
    log = tmp_path / "service.log"
    env = service_env(tmp_path / "db.sqlite", port)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "run"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _limited(soft),
        )
    svc = ServiceProcess.__new__(ServiceProcess)  # attach the helpers to this process
    svc.env, svc.port, svc.base, svc.log, svc.proc = (
        env,
        port,
        f"http://127.0.0.1:{port}",
        log,
        proc,
    )
    try:
        svc.wait_ready()
        time.sleep(0.5)  # let the last readiness connection close
        with idle_sockets(port, cap + 40) as socks:
            time.sleep(0.5)
            refused = [s for s in socks[-40:] if closed_by_server(s, 2.0)]
            assert len(refused) >= 35  # a few may be counted while the earlier ones settle
            with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
            assert proc.poll() is None and open_fds(proc.pid) < soft
            # the idle ones time out; then the service answers again
            time.sleep(IDLE_TIMEOUT + 2)
            assert svc.request("GET", "/healthz")[0] == 200
        text = log.read_text()
        figure(
            "FAULT connection-cap",
            nofile=soft,
            cap=cap,
            opened=cap + 40,
            refused_503=len(refused) + 1,
            log_lines=text.count("connection limit of"),
            log_bytes=len(text),
        )
        assert text.count("connection limit of") == 1, text[-3000:]
        assert "out of system resource" not in text and "Too many open files" not in text
        assert len(text) < 20_000
    finally:
        svc.stop()
