"""A real `ontwatch run` for the browser tests: its own database, inventory and tile server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.process import ROOT, ServiceProcess, free_port, service_env

AREAS = [
    ("Baciro", -7.7950, 110.3820),
    ("Demangan", -7.7830, 110.3900),
    ("Prenggan", -7.8270, 110.3980),
    ("Kadipaten", -7.8070, 110.3580),
]


def inventory(count: int, *, prefix: str = "", spread: float = 0.004) -> list[dict[str, Any]]:
    """`count` ONTs in the older onts.json shape, all ON, loopback IPs, in a few areas."""
    rows = []
    for i in range(1, count + 1):
        area, lat, lon = AREAS[(i - 1) % len(AREAS)]
        # a deterministic spiral inside the area: markers apart, never on one spot
        k = (i - 1) // len(AREAS)
        dy = spread * ((k % 17) - 8) / 8
        dx = spread * (((k // 17) % 17) - 8) / 8
        rows.append(
            {
                "id": f"{prefix}{i}",
                "id_pelanggan": f"BT{i:06d}",
                "name": f"{area} RT {i % 20 + 1:02d} RW {i % 9 + 1:02d}",
                "lokasi": f"Pos Ronda RT {i % 20 + 1:02d} Kelurahan {area}",
                "ip": f"127.20.{i // 250}.{i % 250 + 1}",
                "latitude": round(lat + dy, 6),
                "longitude": round(lon + dx, 6),
                "area": area,
                "status": "ON",
                "rto_count": 0,
            }
        )
    return rows


@dataclass
class Push:
    """One status push and when its HTTP answer arrived (time.monotonic)."""

    ont_id: str
    status: str
    rto: int
    answered_at: float
    body: dict[str, Any]


@dataclass
class LiveService:
    """The service process plus what a test needs to drive it over HTTP."""

    svc: ServiceProcess
    env: dict[str, str]
    log: Path
    token: str | None = None
    args: tuple[str, ...] = ()
    pushes: list[Push] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.svc.base

    def url(self, path: str) -> str:
        return self.svc.base + path

    def call(
        self, method: str, path: str, body: Any = None, *, ctype: str = "application/json"
    ) -> tuple[int, Any]:
        """One request with the admin token when there is one; JSON answer decoded."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                return exc.code, json.loads(payload or b"null")
            except ValueError:
                return exc.code, payload.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def import_onts(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """POST /api/onts/import; every row must be taken."""
        status, report = self.call("POST", "/api/onts/import", list(rows))
        assert status == 200, f"import: {status} {report}"
        assert report["refused"] == 0, report
        return report

    def push(self, ont_id: str, status: str, rto: int = 0) -> Push:
        """POST /api/ont-status/ID; returns when the state is durably stored."""
        code, body = self.call(
            "POST", f"/api/ont-status/{ont_id}", {"status": status, "rto_count": rto}
        )
        answered = time.monotonic()
        assert code == 200, f"push {ont_id}: {code} {body}"
        push = Push(ont_id, status, rto, answered, body)
        self.pushes.append(push)
        return push

    def bulk(self, items: Sequence[dict[str, Any]]) -> tuple[float, Any]:
        """POST /api/ont-status (a list); returns (answered_at, body)."""
        code, body = self.call("POST", "/api/ont-status", list(items))
        answered = time.monotonic()
        assert code == 200, f"bulk push: {code} {str(body)[:300]}"
        return answered, body

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """`ontwatch ARGS` with this service's environment; must succeed."""
        done = subprocess.run(
            [sys.executable, "-m", "ontwatch.cli", *args],
            env=self.env,
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"ontwatch {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def stop(self) -> None:
        self.svc.stop()

    def restart(self) -> None:
        """Stop (SIGTERM) and start again: same port, same database."""
        self.svc.stop()
        self.svc = ServiceProcess(self.env, *self.args, log=self.log)


def start_service(
    workdir: Path, tile_url: str, *args: str, token: str | None = None, **extra: str
) -> LiveService:
    """`ontwatch run` on a free loopback port with a fresh database under workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {
        "ONTWATCH_TILE_URL": tile_url,
        "ONTWATCH_PROBE": "off",
        "ONTWATCH_LOG_LEVEL": "WARNING",
        **extra,  # a test's own settings win
    }
    env = service_env(workdir / "ontwatch.db", free_port(), **settings)
    if token:
        env["ONTWATCH_API_TOKEN"] = token
    log = workdir / "service.log"
    return LiveService(ServiceProcess(env, *args, log=log), env, log, token, args)
