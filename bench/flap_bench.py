"""A flapping ONT in one bulk push: time to answer, notifications stored, memory (issue 10 #2).

Usage: .venv/bin/python bench/flap_bench.py [--updates 20000 50000] [--onts 1000]
Starts the real service on loopback (probing off) with --onts ONTs, then for each size sends
one POST /api/ont-status holding that many alternating OFF/ON updates for ONE ONT, and prints
the seconds until the answer, the notifications stored for that ONT, its transition log and
the service's RSS. Target: 20,000 updates answered in under 1 s, one flapping notice.
Bounded: one request per size, sizes capped at the API's 50,000-item limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.process import ServiceProcess, free_port, service_env

MAX_ITEMS = 50_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def flap(base: str, ont_id: str, n: int) -> tuple[float, int, dict]:
    body = [{"id": ont_id, "status": "OFF" if i % 2 == 0 else "ON"} for i in range(n)]
    data = json.dumps(body).encode()
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        t0 = time.perf_counter()
        async with session.post(
            f"{base}/api/ont-status", data=data, headers={"Content-Type": "application/json"}
        ) as r:
            answer = await r.json()
            status = r.status
        elapsed = time.perf_counter() - t0
    return elapsed, status, answer


def stored(db: Path, ont_id: str) -> tuple[dict[str, int], int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kinds = dict(
            conn.execute(
                "SELECT kind, COUNT(*) FROM notifications WHERE ont_id = ? GROUP BY kind",
                (ont_id,),
            ).fetchall()
        )
        (transitions,) = conn.execute(
            "SELECT transitions FROM ont_state WHERE ont_id = ?", (ont_id,)
        ).fetchone()
        return kinds, len(json.loads(transitions))
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, nargs="+", default=[20_000, 50_000])
    ap.add_argument("--onts", type=int, default=1_000)
    args = ap.parse_args()
    sizes = [min(n, MAX_ITEMS) for n in args.updates]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ontwatch.db"
        svc = ServiceProcess(service_env(db, free_port()), log=Path(tmp) / "service.log")
        try:
            onts = [
                {"id": str(i), "name": f"Baciro {i}", "area": f"A{i % 20}"}
                for i in range(1, args.onts + 1)
            ]
            code, _ = svc.request("POST", "/api/onts", onts)
            assert code in (200, 201), code
            print(
                f"service pid {svc.proc.pid}, {args.onts} ONTs, RSS {rss_mb(svc.proc.pid):.0f} MB"
            )
            for k, n in enumerate(sizes, start=1):
                ont_id = str(k)
                elapsed, status, answer = asyncio.run(flap(svc.base, ont_id, n))
                kinds, log_len = stored(db, ont_id)
                print(
                    f"bulk push of {n} alternating updates for ONT {ont_id}: HTTP {status}, "
                    f"answered in {elapsed:.3f} s, applied {answer.get('applied')}; "
                    f"notifications stored {sum(kinds.values())} {kinds}; "
                    f"transition log {log_len} entries; RSS {rss_mb(svc.proc.pid):.0f} MB"
                )
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
