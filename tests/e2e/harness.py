"""Shared pieces of the end-to-end and fault suites: the fake Bot API process, services, figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.process import ROOT, ServiceProcess, free_port, service_env

GROUP = -100777
TOKEN = "123456:TEST-TOKEN-abcdef"
HOTSPOT = ROOT / "tests" / "data" / "hotspot_onts.json"  # the tests' own copy

FIGURES: list[str] = []
_printed: list[bool] = []


def figure(name: str, **values: object) -> str:
    """Record one figure line (printed now and again in the session summary)."""
    line = f"{name}: " + " ".join(f"{k}={v}" for k, v in values.items())
    FIGURES.append(line)
    print(line, flush=True)
    return line


def print_figures(terminalreporter: Any) -> None:
    """Write every recorded figure once per session, whichever conftest asks first."""
    if _printed or not FIGURES:
        return
    _printed.append(True)
    terminalreporter.section("ontwatch e2e/fault figures")
    for line in FIGURES:
        terminalreporter.write_line(line)


def wait_until(predicate: Callable[[], Any], limit: float = 20.0, what: str = "condition") -> Any:
    """Poll (bounded) until predicate() is truthy; return its value."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {limit}s")
        time.sleep(0.05)


class FakeBotProcess:
    """`python -m tests.fakes.bot_api` on a free loopback port, driven over /_fake/."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.bot_api", "--port", str(free_port())],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # "READY http://127.0.0.1:PORT"
        assert line.startswith("READY http://127.0.0.1:"), line
        self.url = line.split()[1]

    def control(self, action: str, http_timeout: float = 30, **body: Any) -> Any:
        """POST one /_fake/ control and return its result."""
        req = urllib.request.Request(
            f"{self.url}/_fake/{action}", data=json.dumps(body).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=http_timeout) as resp:
            return json.loads(resp.read())["result"]

    def sent(self, chat_id: int | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Recorded successful calls, optionally for one chat and one method."""
        calls = (
            self.control("sent", chat_id=chat_id) if chat_id is not None else self.control("sent")
        )
        if method is not None:
            calls = [c for c in calls if c["method"].lower() == method.lower()]
        return calls

    def visible(self, call: dict[str, Any]) -> str:
        """Text or caption of a recorded call as Telegram shows it."""
        result = call.get("result")
        if isinstance(result, dict):
            return str(result.get("text", result.get("caption", "")) or "")
        return str(call["params"].get("text", call["params"].get("caption", "")) or "")

    def texts(self, chat_id: int) -> list[str]:
        """Visible texts of sendMessage calls to a chat, in order."""
        return [self.visible(c) for c in self.sent(chat_id, "sendMessage")]

    def wait(self, count: int = 1, timeout: float = 15, **filters: Any) -> list[dict[str, Any]]:
        """Wait (bounded) until count recorded calls match the filters."""
        return self.control(
            "wait", http_timeout=timeout + 5, count=count, timeout=timeout, **filters
        )

    def connected(self) -> bool:
        """The bot has registered its commands (it polls for updates right after)."""
        return any(r["method"].lower() == "setmycommands" for r in self.control("requests"))

    def file(self, file_id: str) -> bytes:
        """Bytes the bot uploaded under file_id."""
        with urllib.request.urlopen(f"{self.url}/_fake/files/{file_id}", timeout=10) as resp:
            return resp.read()

    def stop(self) -> None:
        """Terminate the fake."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def bot_env(tmp: Path, fake: FakeBotProcess, tile_url: str, **extra: str) -> dict[str, str]:
    """Environment of a service with the bot on the fake, the alert group and local tiles."""
    values = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.url,
        "ONTWATCH_ALERT_CHATS": str(GROUP),
        "ONTWATCH_TILE_URL": tile_url,
        "ONTWATCH_GROUP_WAIT": "0.2",
        "ONTWATCH_LANG": "en",
        "ONTWATCH_LOG_LEVEL": "INFO",
        "ONTWATCH_BACKUP_DIR": str(tmp / "backups"),
    }
    values.update(extra)
    return service_env(tmp / "ontwatch.db", free_port(), **values)


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 15,
) -> tuple[int, Any]:
    """One HTTP request; returns (status, decoded JSON or None)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        status = exc.code
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload


__all__ = [
    "FIGURES",
    "GROUP",
    "HOTSPOT",
    "TOKEN",
    "FakeBotProcess",
    "ServiceProcess",
    "bot_env",
    "figure",
    "print_figures",
    "request",
    "wait_until",
]
