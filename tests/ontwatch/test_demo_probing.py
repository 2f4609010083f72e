"""`ontwatch run --demo` with probing on: real ICMP to the demo's loopback IPs, real silence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.sweep import detect_icmp_mode
from tests.netfilter import missing_privileges, nft_table, silence_rule
from tests.process import ServiceProcess, free_port, service_env

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(detect_icmp_mode() == "none", reason="no ICMP socket allowed here"),
    pytest.mark.skipif(
        missing_privileges("nft") is not None, reason=missing_privileges("nft") or ""
    ),
]


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_demo_probed_then_a_range_goes_silent(tmp_path: Path) -> None:
    env = service_env(
        tmp_path / "p.db",
        free_port(),
        ONTWATCH_PROBE="on",
        ONTWATCH_PROBE_INTERVAL="1",
        ONTWATCH_PROBE_TIMEOUT="0.5",
    )
    svc = ServiceProcess(env, "--demo", log=tmp_path / "p.log")
    try:
        onts = svc.get("/api/onts")
        assert all(o["ip"].startswith("127.10.") for o in onts)
        wait_until(lambda: svc.get("/api/stats")["online"] == len(onts), 20, "all demo ONTs ON")
        assert "ICMP probing with" in svc.tail()
        # Demo ONT i has 127.10.(i // 250).(i % 250 + 1): ids 1..15 are .0.2-.0.16, two per area.
        silent_ips = {f"127.10.0.{i}" for i in range(2, 17)}
        silent_ids = {o["id"] for o in onts if o["ip"] in silent_ips}
        assert len(silent_ids) == 15
        with nft_table(silence_rule("127.10.0.2-127.10.0.16")):
            wait_until(
                lambda: all(svc.get(f"/api/onts/{i}")["status"] == "OFF" for i in silent_ids),
                20,
                "the silenced ONTs OFF",
            )
            stats = svc.get("/api/stats")
            assert stats["offline"] == 15 and stats["online"] == len(onts) - 15
        notes = svc.get("/api/notifications?limit=500")
        opened = {n["ont_id"] for n in notes if n["kind"] == "opened"}
        assert opened == silent_ids  # one incident each, nothing for the answering ONTs
        assert all(n["ont_id"] in silent_ids for n in notes if n["ont_id"])
        wait_until(
            lambda: svc.get("/api/stats")["online"] == len(onts), 20, "recovery after the rule"
        )
        notes = svc.get("/api/notifications?limit=500")
        resolved = {n["ont_id"] for n in notes if n["kind"] == "resolved"}
        assert resolved == silent_ids
    finally:
        svc.stop()
