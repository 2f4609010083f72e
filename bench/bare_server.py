"""Baseline for bench/push_bench.py: bare aiohttp + aiosqlite, one UPDATE and COMMIT per request.

The same durability contract as ontwatch: WAL with synchronous=FULL (read back and printed
at start), and every answer sent only after its COMMIT returned. None of ontwatch's work (no
rules, history, notifications, group commit or validation beyond JSON); loopback only.
Usage: python bench/bare_server.py DB PORT N_ONTS
"""

from __future__ import annotations

import asyncio
import sys

import aiosqlite
from aiohttp import web


async def main(db_path: str, port: int, n: int) -> None:
    """Serve POST /api/ont-status/{id} until killed."""
    conn = await aiosqlite.connect(db_path)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS ont (id TEXT PRIMARY KEY, status TEXT, rto_count INTEGER)"
    )
    await conn.executemany(
        "INSERT OR IGNORE INTO ont VALUES (?, 'ON', 0)", [(str(i),) for i in range(1, n + 1)]
    )
    await conn.commit()
    sync = await (await conn.execute("PRAGMA synchronous")).fetchone()
    mode = await (await conn.execute("PRAGMA journal_mode")).fetchone()
    assert sync is not None and sync[0] == 2 and mode is not None and mode[0] == "wal", (sync, mode)
    print(f"bare server: journal_mode={mode[0]} synchronous=FULL, commit per request", flush=True)

    async def push(request: web.Request) -> web.Response:
        body = await request.json()
        cur = await conn.execute(
            "UPDATE ont SET status = ?, rto_count = ? WHERE id = ?",
            (body["status"], body.get("rto_count", 0), request.match_info["id"]),
        )
        await conn.commit()
        if cur.rowcount == 0:
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"id": request.match_info["id"], "status": body["status"]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes([web.post("/api/ont-status/{id}", push), web.get("/healthz", health)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
