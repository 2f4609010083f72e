"""Self-checks behind GET /healthz: event loop lag, a real database write, the outbox moving."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.ports import StoreDown
from ontwatch.leader import STANDBY, Leadership
from storage import backup as backups
from storage.database import Database
from storage.outbox import OutboxStore
from storage.probe import write_probe

LOOP_LAG_LIMIT = 2.0  # seconds late a 0.25 s heartbeat may be before the loop counts as stalled
LAG_WINDOW = 30.0
DB_WRITE_TIMEOUT = 3.0
OUTBOX_STUCK_AFTER = timedelta(minutes=15)


@dataclass
class LoopWatch:
    """A heartbeat task; how late it wakes up is how stalled the event loop is."""

    interval: float = 0.25
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=512))
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start beating in the running loop."""
        self._task = asyncio.create_task(self._beat(), name="ontwatch-loopwatch")

    async def stop(self) -> None:
        """Stop the heartbeat."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _beat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.lags.append((now, max(0.0, now - before - self.interval)))

    def lag_quantiles(self, qs: tuple[float, ...] = (0.5, 0.99, 1.0)) -> dict[str, float]:
        """Quantiles of the recent heartbeats' lag (the last 512 beats, about 2 minutes)."""
        lags = sorted(lag for _, lag in self.lags)
        if not lags:
            return {}
        return {f"{q:g}": lags[min(len(lags) - 1, int(q * len(lags)))] for q in qs}

    def worst_lag(self) -> float:
        """The largest lag seen in the last LAG_WINDOW seconds (and since the last beat)."""
        now = time.monotonic()
        recent = [lag for at, lag in self.lags if now - at <= LAG_WINDOW]
        since_last = now - self.lags[-1][0] - self.interval if self.lags else 0.0
        return max([*recent, since_last, 0.0])


async def database_writable(db: Database) -> str:
    """'' when a real write commits within the timeout, else why not."""
    try:
        stamp = datetime.now(UTC).isoformat()
        await asyncio.wait_for(write_probe(db, stamp), DB_WRITE_TIMEOUT)
    except TimeoutError:
        return f"database write took more than {DB_WRITE_TIMEOUT:.0f} s (locked?)"
    except (sqlite3.Error, OSError, StoreDown) as exc:  # StoreDown: PostgreSQL's (write_probe)
        return f"database not writable: {exc}"
    return ""


async def database_readable(db: Database) -> str:
    """'' when a read answers within the timeout, else why not (a standby writes nothing)."""
    try:
        await asyncio.wait_for(OutboxStore(db).pending_age(datetime.now(UTC)), DB_WRITE_TIMEOUT)
    except TimeoutError:
        return f"database read took more than {DB_WRITE_TIMEOUT:.0f} s"
    except (sqlite3.Error, OSError, *getattr(db, "down_errors", ())) as exc:
        return f"database not readable: {exc}"
    return ""


def leadership_detail(who: Leadership) -> dict[str, Any]:
    """What /healthz says about who leads."""
    return {
        "role": who.role,
        "instance": who.instance,
        "leader": who.leader,
        "leader_since": who.since.isoformat() if who.since is not None else None,
        "epoch": who.epoch,
    }


async def outbox_age(db: Database, now: datetime) -> tuple[int, float]:
    """Undelivered outbox rows and the age in seconds of the oldest one."""
    return await OutboxStore(db).pending_age(now)


async def check(
    *,
    loop: LoopWatch,
    db: Database,
    writer_alive: Callable[[], bool],
    bot_enabled: bool,
    now: datetime,
    backup_dir: Path | None = None,
    leadership: Leadership | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Run every check; healthy only when all pass. The detail says which failed and why.

    A standby (PostgreSQL, another instance leads) runs no writer and writes nothing: its
    database check is a read.
    """
    problems: list[str] = []
    lag = loop.worst_lag()
    if lag > LOOP_LAG_LIMIT:
        problems.append(f"event loop stalled: a heartbeat was {lag:.1f} s late")
    standby = leadership is not None and leadership.role == STANDBY
    if not standby and not writer_alive():
        problems.append("the engine's writer task is not running")
    if reason := await (database_readable(db) if standby else database_writable(db)):
        problems.append(reason)
    pending, age = await outbox_age(db, now)
    if bot_enabled and age > OUTBOX_STUCK_AFTER.total_seconds():
        problems.append(f"outbox stuck: {pending} messages undelivered, oldest {age:.0f} s old")
    failed = await asyncio.to_thread(backups.last_failure, backup_dir) if backup_dir else None
    if failed is not None:
        problems.append(
            f"the last backup failed its integrity check ({failed.at:%Y-%m-%d %H:%M} UTC: "
            f"{failed.problems}); it is kept aside as {failed.path}"
        )
    detail = {
        "loop_lag_s": round(lag, 3),
        "outbox_pending": pending,
        "outbox_oldest_s": round(age, 1),
        "problems": problems,
    }
    if leadership is not None:
        detail.update(leadership_detail(leadership))
    return not problems, detail
