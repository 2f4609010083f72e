"""Push latency with and without a maximum-size import running (issue 10, finding 3).

Usage: .venv/bin/python bench/import_load_bench.py [--seconds 20] [--concurrency 10]
       [--onts 10000] [--client auto|wrk|python]
On loopback only. The service gets --onts ONTs (ids p1..pN) to push to; phase 1 measures
single pushes for --seconds; phase 2 does the same while the maximum-size import
(api.app.MAX_IMPORT_ROWS rows, close to MAX_BODY bytes, ids 1..N) is posted again and again
(always one running, bounded by the phase's time). Target: phase 2 p99 <= 2x phase 1 p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from api.app import MAX_IMPORT_ROWS
from bench import wrk_run
from bench.push_bench import load
from tests.faults.test_import_load import max_import_csv
from tests.process import ServiceProcess, free_port, service_env


def post(base: str, path: str, body: bytes, ctype: str) -> dict:
    req = urllib.request.Request(
        base + path, data=body, method="POST", headers={"Content-Type": ctype}
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def drive(base: str, args: argparse.Namespace) -> dict:
    """One bounded phase of single pushes to p1..pN."""
    if args.client == "wrk":
        return wrk_run.run(
            base, onts=args.onts, seconds=args.seconds, connections=args.concurrency, prefix="p"
        )
    return asyncio.run(
        load(base, args.onts, 10**9, args.concurrency, args.seconds, prefix="p")  # time-bound
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--onts", type=int, default=10_000)
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = ap.parse_args()
    if args.client == "auto":
        args.client = "wrk" if wrk_run.wrk_path() else "python"
    tmp = Path(tempfile.mkdtemp(prefix="ontwatch-importbench-"))
    body = max_import_csv()
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; database under {tmp}"
    )
    print(
        f"client {args.client}, {args.concurrency} connections, {args.seconds:.0f} s a phase; "
        f"import: {MAX_IMPORT_ROWS} rows, {len(body) / 2**20:.1f} MiB CSV"
    )
    env = service_env(tmp / "ontwatch.db", free_port(), ONTWATCH_LOG_LEVEL="WARNING")
    svc = ServiceProcess(env, log=tmp / "service.log")
    try:
        inventory = [
            {"id": f"p{i}", "name": f"Push {i}", "area": f"P{i % 20}"}
            for i in range(1, args.onts + 1)
        ]
        post(svc.base, "/api/onts/import", json.dumps(inventory).encode(), "application/json")
        quiet = drive(svc.base, args)
        imports: list[float] = []
        stop = threading.Event()

        def importer() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                report = post(svc.base, "/api/onts/import", body, "text/csv")
                assert report["imported"] == MAX_IMPORT_ROWS, report.get("refused")
                imports.append(time.monotonic() - t0)

        worker = threading.Thread(target=importer)
        worker.start()
        time.sleep(0.5)  # the first import is on its way (being sent, parsed)
        try:
            busy = drive(svc.base, args)
        finally:
            stop.set()
            worker.join(600)
        health = svc.get("/healthz")
    finally:
        svc.stop()

    def row(name: str, r: dict) -> str:
        return (
            f"{name:<34} {r['requests']:>7} req  {r['rate']:>7.0f}/s  p50 {r['p50_ms']:6.1f} ms"
            f"  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}"
        )

    print(row("pushes, no import", quiet))
    print(row("pushes while max-size imports run", busy))
    print(
        f"imports during phase 2: {len(imports)} ({', '.join(f'{t:.1f} s' for t in imports)})"
        f"; /healthz after: ok={health.get('ok')} loop_lag_s={health.get('loop_lag_s')}"
    )
    print(f"p99 ratio busy/quiet: {busy['p99_ms'] / quiet['p99_ms']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
