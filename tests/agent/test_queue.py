"""The store-and-forward queue on a real SQLite file, and across a real kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.queue import ReportQueue, encode
from tests.process import ROOT


async def opened(path: Path, max_bytes: int = 1 << 20) -> ReportQueue:
    return await ReportQueue(path, max_bytes).open()


def payload(n: int, size: int = 3) -> dict[str, object]:
    return {"n": n, "obs": [[str(i), 1764657600.0 + n, 0] for i in range(size)]}


async def test_put_peek_ack_oldest_first(tmp_path: Path) -> None:
    """Reports come back oldest first with their payload; ack removes exactly one."""
    q = await opened(tmp_path / "q.sqlite")
    seqs = [await q.put(payload(n), created=1000.0 + n) for n in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert q.depth == 5 and q.oldest == 1000.0
    first = await q.peek(2)
    assert [i.seq for i in first] == seqs[:2] and first[0].payload == payload(0)
    await q.ack(seqs[0])
    assert [i.seq for i in await q.peek(10)] == seqs[1:]
    assert q.depth == 4 and q.oldest == 1001.0
    await q.close()


async def test_seq_is_never_reused_and_the_epoch_is_kept(tmp_path: Path) -> None:
    """Everything acked, the file closed and reopened: the next seq goes on, same epoch."""
    path = tmp_path / "q.sqlite"
    q = await opened(path)
    epoch = q.epoch
    last = 0
    for n in range(3):
        last = await q.put(payload(n))
        await q.ack(last)
    assert q.depth == 0 and q.oldest is None
    await q.close()
    again = await opened(path)
    assert again.epoch == epoch and len(epoch) == 32
    assert await again.put(payload(9)) == last + 1
    await again.close()
    other = await opened(tmp_path / "other.sqlite")
    assert other.epoch != epoch  # a new file is a new epoch
    await other.close()


async def test_the_bound_drops_the_oldest_counts_them_and_asks_for_full(tmp_path: Path) -> None:
    """Past max_bytes the oldest go (never the newest), counted durably; overflow is told once."""
    one = len(encode(payload(0, size=50)))
    path = tmp_path / "q.sqlite"
    q = await opened(path, max_bytes=one * 3 + one // 2)
    seqs = [await q.put(payload(n, size=50)) for n in range(3)]
    assert q.dropped == 0 and not q.take_overflow()
    seqs.append(await q.put(payload(3, size=50)))
    seqs.append(await q.put(payload(4, size=50)))
    assert q.dropped == 2 and q.depth == 3
    assert [i.seq for i in await q.peek(10)] == seqs[2:]
    assert q.take_overflow() and not q.take_overflow()
    assert q.stats()["dropped"] == 2
    await q.close()
    again = await opened(path, max_bytes=one * 3 + one // 2)
    assert again.dropped == 2 and again.depth == 3
    await again.close()


async def test_a_report_bigger_than_the_bound_is_still_kept(tmp_path: Path) -> None:
    """The newest report is never the one dropped, even alone over the bound."""
    q = await opened(tmp_path / "q.sqlite", max_bytes=10)
    a = await q.put(payload(0, size=100))
    b = await q.put(payload(1, size=100))
    assert [i.seq for i in await q.peek(5)] == [b] and q.dropped == 1 and a < b
    await q.close()


async def test_put_aside_takes_a_report_out_and_keeps_it_for_a_look(tmp_path: Path) -> None:
    """A report the centre refused leaves the queue, is counted, and stays in `aside`."""
    path = tmp_path / "q.sqlite"
    q = await opened(path)
    bad = await q.put(payload(0))
    good = await q.put(payload(1))
    await q.put_aside(bad, "HTTP 400: obs[0]: bad")
    assert [i.seq for i in await q.peek(5)] == [good] and q.set_aside == 1
    await q.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT seq, why FROM aside").fetchall() == [
            (bad, "HTTP 400: obs[0]: bad")
        ]
    again = await opened(path)
    assert again.set_aside == 1
    await again.close()


async def test_meta_values_survive_a_reopen(tmp_path: Path) -> None:
    """The last assignment is kept beside the reports (an agent restarted while the centre
    is down still knows what to sweep)."""
    path = tmp_path / "q.sqlite"
    q = await opened(path)
    await q.set_meta("assignment", '{"v": 1}')
    await q.close()
    again = await opened(path)
    assert await again.meta("assignment") == '{"v": 1}' and await again.meta("nope") is None
    await again.close()


async def test_the_file_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    """The durability settings are really in force on the queue's connection."""
    q = await opened(tmp_path / "q.sqlite")
    db = q._conn()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    await q.close()


async def test_not_a_queue_file_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not SQLite names the setting."""
    path = tmp_path / "q.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match="ONTWATCH_AGENT_QUEUE"):
        await opened(path)


CHILD = """
import asyncio, sys
from pathlib import Path
from agent.queue import ReportQueue

async def main():
    q = await ReportQueue(Path(sys.argv[1])).open()
    print("epoch", q.epoch, flush=True)
    n = 0
    while True:  # bounded by the parent's kill; each line follows a committed put/ack
        seq = await q.put({"n": n, "obs": [["1", 1764657600.0 + n, n % 3]]})
        print("put", seq, flush=True)
        if n % 2 == 0:
            await q.ack(seq)
            print("ack", seq, flush=True)
        n += 1
        await asyncio.sleep(0.005)

asyncio.run(main())
"""


def test_kill_9_loses_nothing_accepted(tmp_path: Path) -> None:
    """A child puts and acks, printing after each commit; kill -9 mid-stream; reopen: every
    report it was told was put and not acked is there, none acked is, seq goes on."""
    path = tmp_path / "q.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for _ in range(400):  # bounded: at most 400 lines, then kill
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.split())
        if sum(1 for w in lines if w[0] == "put") >= 120:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    epoch = lines[0][1]
    put = [int(w[1]) for w in lines if w[0] == "put"]
    acked = {int(w[1]) for w in lines if w[0] == "ack"}
    assert len(put) >= 120

    async def check() -> None:
        q = await opened(path)
        left = {i.seq for i in await q.peek(10_000)}
        assert q.epoch == epoch
        assert set(put) - acked <= left  # nothing it was told was stored is lost
        assert not acked & left  # nothing acked comes back
        # At most the one report in flight at the kill is there without its "put" line.
        assert len(left - set(put)) <= 1
        for item in await q.peek(10_000):
            assert item.payload["obs"][0][1] == 1764657600.0 + item.payload["n"]
        assert await q.put({"n": -1, "obs": []}) > max(put + list(left))
        await q.close()

    asyncio.run(check())
