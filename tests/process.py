"""Running the real `ontwatch` command as a separate process, for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(db: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for a service on loopback with its own database and no outside contact."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env.update(
        ONTWATCH_DB=str(db),
        ONTWATCH_HTTP_HOST="127.0.0.1",
        ONTWATCH_HTTP_PORT=str(port),
        ONTWATCH_PROBE="off",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `ontwatch ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ontwatch.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServiceProcess:
    """`ontwatch run` in a subprocess; waits until /healthz answers."""

    def __init__(self, env: dict[str, str], *args: str, log: Path | None = None) -> None:
        self.env = env
        self.port = int(env["ONTWATCH_HTTP_PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "run", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}: {self.tail()}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"service not ready after {timeout}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
