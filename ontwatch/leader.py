"""The role manager: one leader among the instances sharing a PostgreSQL, the others standing by.

A standby tries to take the lease every third of its length; once it has it, it starts the
leader's duties (the service's callback) and renews every third. Losing the lease — a renewal
refused, no renewal possible before the lease runs out, or a write transaction finding the
fence gone — is final for this process: it stops writing at once (the fence in the database
already refuses every write), says so, and the service exits with EXIT_LOST_LEASE for its
supervisor to start it again as a standby. Rejoining in-process would mean undoing every
duty's state half-way; a fresh process cannot get that wrong.

Graceful shutdown releases the lease after the last write, so a standby takes over at its
next try instead of waiting the lease out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # psycopg is imported only when PostgreSQL is used
    from storage.leadership import Lease, LeaseInfo

log = logging.getLogger("ontwatch.leader")

EXIT_LOST_LEASE = 75  # EX_TEMPFAIL: the lease was lost; the supervisor restarts us (standby)
LEADER, STANDBY = "leader", "standby"


@dataclass(frozen=True, slots=True)
class Leadership:
    """What /healthz, /metrics and the standby's 503 say about who leads."""

    role: str  # LEADER or STANDBY (this instance)
    instance: str  # this instance's name
    leader: str | None  # the instance holding an unexpired lease, if known
    since: datetime | None  # when that leader took the lease
    epoch: int | None  # its epoch


class RoleManager:
    """Standby loop, takeover, renewals; `on_lost(reason)` is told once when the lease is gone."""

    def __init__(
        self,
        lease: Lease,
        *,
        become_leader: Callable[[int], Awaitable[None]],
        on_lost: Callable[[str], None],
    ) -> None:
        self.lease = lease
        self.period = lease.ttl / 3
        self._become_leader = become_leader
        self._on_lost = on_lost
        self.role = STANDBY
        self.info: LeaseInfo | None = None  # the row as last read
        self.lost: str | None = None  # why the lease was lost, once it was
        self._deadline = 0.0  # monotonic time by which our lease surely ends, unless renewed
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._duties_settled = asyncio.Event()  # become_leader returned or raised

    @property
    def instance(self) -> str:
        """This instance's name in the lease row."""
        return self.lease.instance

    def start(self) -> None:
        """Run the standby loop (then the renewals) in the background."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="ontwatch-leader")

    async def duties_settled(self) -> None:
        """Once we lead: until become_leader has returned (or failed), so that a shutdown
        never stops the duties while a takeover is still starting them."""
        if self.role == LEADER:
            await self._duties_settled.wait()

    async def halt(self) -> None:
        """Stop trying and renewing (the lease, if held, stays ours until it runs out)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop(self, *, release: bool = True) -> None:
        """Halt; release the lease when we hold it (graceful shutdown, after the last write)."""
        await self.halt()
        if release and self.role == LEADER and self.lost is None:
            try:
                await self.lease.release()
                log.info("lease released: a standby takes over at its next try")
            except self.lease.errors as exc:
                log.warning("lease not released (%s): it runs out by itself", exc)
        await self.lease.close()

    def leadership(self) -> Leadership:
        """Who leads, as far as this instance knows."""
        info = self.info
        if self.role == LEADER and self.lost is None:
            ours = info is not None and (info.holder, info.epoch) == (
                self.instance,
                self.lease.epoch,
            )
            since = info.since if info is not None and ours else None
            return Leadership(LEADER, self.instance, self.instance, since, self.lease.epoch)
        if info is None or not info.active:
            return Leadership(STANDBY, self.instance, None, None, None)
        return Leadership(STANDBY, self.instance, info.holder, info.since, info.epoch)

    def fence_lost(self) -> None:
        """The fence refused a write (from any thread): the lease is gone."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._lose, "a write found the lease gone")

    # -- the loops ------------------------------------------------------------------------

    async def _run(self) -> None:
        epoch = await self._standby()
        self.role = LEADER
        # Renewals run from the moment the lease is ours: starting the duties (loading a large
        # state, the bot connecting) may take longer than the lease.
        renewals = asyncio.create_task(self._renewals(), name="ontwatch-lease-renewals")
        try:
            try:
                await self._become_leader(epoch)
            except Exception as exc:
                log.exception("the leader's duties did not start")
                self._lose(f"the leader's duties did not start: {exc}")
                return
            finally:
                self._duties_settled.set()
            await renewals
        finally:
            renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals

    async def _standby(self) -> int:
        """Try to take the lease every period until we have it."""
        complained = False
        while True:
            started = time.monotonic()
            try:
                epoch = await self.lease.acquire()
            except self.lease.errors as exc:
                if not complained:
                    log.warning("standby: cannot reach the lease (%s); trying on", exc)
                complained, epoch = True, None
            with contextlib.suppress(*self.lease.errors):
                self.info = await self.lease.current()
            if epoch is not None:
                self._deadline = started + self.lease.ttl
                log.info("took the lease: leader (epoch %d) as %s", epoch, self.instance)
                return epoch
            await asyncio.sleep(self.period)

    async def _renewals(self) -> None:
        """Renew every period; a refusal, or no success before the lease ends, loses it."""
        while self.lost is None:
            await asyncio.sleep(max(0.0, min(self.period, self._deadline - time.monotonic())))
            started = time.monotonic()
            if started >= self._deadline:  # e.g. this process was frozen past its lease
                self._lose("the lease ran out before it could be renewed")
                return
            try:
                held = await self.lease.renew()
            except self.lease.errors as exc:
                log.warning("lease renewal failed (%s); retrying until it runs out", exc)
                await asyncio.sleep(min(0.5, self.period))
                continue
            if not held:
                self._lose("the lease was taken by another instance")
                return
            self._deadline = started + self.lease.ttl
            with contextlib.suppress(*self.lease.errors):
                self.info = await self.lease.current()

    def _lose(self, reason: str) -> None:
        if self.lost is not None:
            return
        self.lost = reason
        log.error(
            "lost the lease (%s): %s stops writing now and exits %d, to come back as a standby",
            reason,
            self.instance,
            EXIT_LOST_LEASE,
        )
        self._on_lost(reason)
