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

The renewals run on a thread of their own (`Renewer`, its own event loop and connection): a
leader's loop busy for seconds (a 20,000-problem bulk push) must not starve its lease. The
loop beats every period; when it has not beaten for HUNG_LEASES leases the renewer lets the
lease run out, so a leader whose loop hangs does not keep it forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # psycopg is imported only when PostgreSQL is used
    from storage.leadership import Lease, LeaseInfo

log = logging.getLogger("ontwatch.leader")

EXIT_LOST_LEASE = 75  # EX_TEMPFAIL: the lease was lost; the supervisor restarts us (standby)
HUNG_LEASES = 2.0  # the loop silent this many leases: the renewer stops renewing
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
        self._beat = time.monotonic()  # the loop's last sign of life (the renewer reads it)
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
        self.lose_soon("a write found the lease gone")

    # -- the loops ------------------------------------------------------------------------

    async def _run(self) -> None:
        epoch = await self._standby()
        self.role = LEADER
        # Renewals run from the moment the lease is ours: starting the duties (loading a large
        # state, the bot connecting) may take longer than the lease.
        renewer = Renewer(self, self.lease.twin())
        renewer.start()
        watch = asyncio.create_task(self._watch(), name="ontwatch-lease-watch")
        try:
            try:
                await self._become_leader(epoch)
            except Exception as exc:
                log.exception("the leader's duties did not start")
                self._lose(f"the leader's duties did not start: {exc}")
                return
            finally:
                self._duties_settled.set()
            await watch
        finally:
            watch.cancel()
            renewer.stop()  # no renewal starts from now on
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await asyncio.to_thread(renewer.join)

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

    async def _watch(self) -> None:
        """On the loop: beat for the renewer, lose the lease once it ran out unrenewed (this
        process was frozen, or the database unreachable), read the row for /healthz."""
        while self.lost is None:
            self._beat = time.monotonic()
            if self._beat >= self._deadline:
                self._lose("the lease ran out before it could be renewed")
                return
            with contextlib.suppress(*self.lease.errors):
                self.info = await self.lease.current()
            await asyncio.sleep(max(0.0, min(self.period, self._deadline - time.monotonic())))

    def renewed(self, started: float) -> None:
        """A renewal that started at `started` (monotonic) succeeded (from the renewer)."""
        self._deadline = started + self.lease.ttl

    def lose_soon(self, reason: str) -> None:
        """_lose on the loop, from any thread (the renewer's, the writer's)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._lose, reason)

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


class Renewer:
    """Renews the manager's lease every period from a thread with its own event loop and
    lease connection, whatever the service's loop is doing; tells the manager of each
    success (renewed) and of a loss (lose_soon)."""

    def __init__(self, manager: RoleManager, lease: Lease) -> None:
        self.manager, self.lease = manager, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="ontwatch-lease-renewer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No renewal starts after this returns (one under way finishes)."""
        self._stop.set()

    def join(self) -> None:
        self._thread.join()

    async def _run(self) -> None:
        try:
            await self._renewals()
        finally:
            await self.lease.close()

    async def _renewals(self) -> None:
        manager, period, ttl = self.manager, self.manager.period, self.lease.ttl
        quiet = False
        while await self._wait(period):
            started = time.monotonic()
            if started >= manager._deadline:  # e.g. this process was frozen past its lease
                manager.lose_soon("the lease ran out before it could be renewed")
                return
            if started - manager._beat > HUNG_LEASES * ttl:
                if not quiet:
                    log.error("the event loop has not run for %.0f s: the lease is let run out",
                              started - manager._beat)  # fmt: skip
                quiet = True
                continue
            quiet = False
            try:
                held = await self.lease.renew()
            except self.lease.errors as exc:
                log.warning("lease renewal failed (%s); retrying until it runs out", exc)
                period = min(0.5, manager.period)
                continue
            period = manager.period
            if not held:
                manager.lose_soon("the lease was taken by another instance")
                return
            manager.renewed(started)

    async def _wait(self, seconds: float) -> bool:
        """Sleep in short steps; False once stopped."""
        until = time.monotonic() + seconds
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, 0.05))
        return False
