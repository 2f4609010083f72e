"""Scheduled jobs on APScheduler's AsyncIOScheduler, in the service's own event loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A coroutine function to run every `every` seconds."""

    name: str
    run: Callable[[], Awaitable[object]]
    every: float


def build_scheduler(jobs: Sequence[Job]) -> AsyncIOScheduler:
    """A scheduler with the jobs; never two runs of one job at once, missed runs coalesced."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            _logged(job),
            "interval",
            seconds=job.every,
            id=job.name,
            name=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(job.every)),
        )
    return scheduler


def _logged(job: Job) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.run()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", job.name)

    run.__name__ = job.name
    return run
