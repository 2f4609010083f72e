"""Wiring and lifecycle: database, engine, HTTP API (and bot, prober, jobs) in one event loop.

Two halves (docs/postgresql.md): the read side every instance runs (database, queries, the
engine's view, HTTP: pages, JSON reads, the event stream), and the leader's duties (engine
writer, prober, scheduled jobs, agents' desk, outbox delivery, Telegram polling). With SQLite
the service is always the leader and has no lease. With PostgreSQL it starts as a standby
(the follower keeps the view current, writes are answered 503) and takes on the duties once
its role manager holds the lease; a lost lease ends the process (EXIT_LOST_LEASE).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from api.app import ApiDeps, create_app
from bot.ports import BotConfig, BotStores
from maps.render import MapRenderer
from maps.tile_fetch import default_user_agent
from monitor.agents import AgentDesk
from monitor.engine import Engine
from monitor.jobs import Job, build_scheduler
from monitor.model import Event, Observation, Ont, Source, Status
from monitor.ports import Clock
from monitor.prober import Prober
from monitor.summary import summarize
from monitor.sweep import Sweeper
from monitor.view import EngineView
from ontwatch import connections, health, metrics
from ontwatch.demo import demo_inventory
from ontwatch.leader import EXIT_LOST_LEASE, LEADER, Leadership, RoleManager
from ontwatch.settings import Settings, SettingsError
from storage import backup as backups
from storage import retention
from storage.agents import Agents
from storage.database import Database
from storage.database import open_database as database_for
from storage.outbox import BotMessages, ChatPrefs, OutboxStore, Subscriptions
from storage.queries import Queries
from storage.store import SqliteStore
from storage.users import SessionPolicy, Users, count_admins
from web import auth as access
from web.security import HostPolicy

log = logging.getLogger("ontwatch")
alerts_log = logging.getLogger("ontwatch.alerts")

LOST_LEASE_STOP_SECONDS = 10.0  # bound on the shutdown after a lost lease; then exit anyway
LOST_LEASE_GRACE_SECONDS = 1.0  # requests already received get their 503 before HTTP closes


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


class LogSink:
    """Writes every committed, to-be-told event to the log (the only output when no bot)."""

    def committed(self, events: Sequence[tuple[Event, Ont | None]]) -> None:
        """Log one line per event, in English: 'ALERT RECOVERED · Baciro (id 2): ON again ...'."""
        for event, ont in events:
            if event.notify:
                alerts_log.info("ALERT %s", summarize(event, ont, "en"))


@dataclass
class Service:
    """The running ontwatch: owns every component and starts/stops them in order."""

    settings: Settings
    demo: bool = False
    clock: Clock = utcnow
    db: Database | None = None
    engine: Engine | None = None
    reads: Queries | None = None
    runner: web.AppRunner | None = None
    port: int = 0
    scheduler: AsyncIOScheduler | None = None
    prober: Prober | None = None
    sweeper: Sweeper | None = None
    desk: AgentDesk | None = None  # the probe agents (docs/agents.md), as engine.agents
    bot: Any = None  # bot.runtime.BotRuntime when TELEGRAM_BOT_TOKEN is set
    maps: MapRenderer | None = None
    events: Any = None  # web.events.EventHub: GET /api/events
    loopwatch: health.LoopWatch = field(default_factory=health.LoopWatch)
    role: RoleManager | None = None  # PostgreSQL: the lease; None with SQLite (always leader)
    follower: Any = None  # monitor.follower.Follower while a standby follows the leader
    exit_code: int = 0  # EXIT_LOST_LEASE once the lease was lost
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: datetime | None = None
    _stopping: asyncio.Event | None = None

    def check(self) -> None:
        """Refuse settings that would leave the service unusable or the tokens confused.

        Beyond loopback every request needs a login or a token, so nothing is open; but with
        neither an admin token nor an enabled admin user nobody could push, import or change
        anything (routers' pushes would all be 401), so start-up is refused with the fix.
        """
        s = self.settings
        if isinstance(s.db, Path) and s.db.is_dir():
            raise SettingsError(f"ONTWATCH_DB: {s.db} is a directory; name the database file")
        if not s.host_is_loopback and s.api_token is None and self._admins() == 0:
            raise SettingsError(
                f"ONTWATCH_HTTP_HOST: refusing to listen on {s.http_host} without "
                "ONTWATCH_API_TOKEN or an admin user (ontwatch user add NAME --role admin): "
                "nobody could push or change anything"
            )
        tokens = [t.get_secret_value() for t in (s.api_token, s.read_token) if t is not None]
        if len(tokens) == 2 and tokens[0] == tokens[1]:
            raise SettingsError("ONTWATCH_READ_TOKEN: must differ from ONTWATCH_API_TOKEN")

    def _admins(self) -> int:
        """Enabled admin users (a file read-only, or a short PostgreSQL connection)."""
        return count_admins(self.settings.db)

    def data_dir(self) -> Path:
        """Where the tile cache and backups live: beside the SQLite file, else
        ONTWATCH_STATE_DIR (Settings.data_dir)."""
        return self.settings.data_dir

    def session_policy(self) -> SessionPolicy:
        """How long web login sessions live."""
        s = self.settings
        return SessionPolicy(
            idle=timedelta(minutes=s.session_idle_minutes),
            absolute=timedelta(minutes=s.session_absolute_minutes),
        )

    def access_config(self) -> access.AccessConfig:
        """Who may see what (web/auth.py), from the settings."""
        assert self.db is not None
        s = self.settings
        return access.AccessConfig(
            login_required=s.login_enforced,
            admin_token=s.api_token.get_secret_value() if s.api_token else None,
            read_token=s.read_token.get_secret_value() if s.read_token else None,
            users=Users(self.db),
            policy=self.session_policy(),
            clock=self.clock,
            hosts=HostPolicy.for_bind(s.http_host, s.public_names),
            trust_proxy=s.trust_proxy,
            lang=s.lang,
        )

    async def start(self) -> None:
        """Open the database and the read side; lead (SQLite) or stand by (PostgreSQL)."""
        self.check()
        s = self.settings
        self.started_at = self.clock()
        self.db = await open_database(s.db)
        self.reads = Queries(self.db)
        # One renderer for /map and GET /api/map.png: one tile cache, shared renders.
        self.maps = MapRenderer(
            s.tile_url, self.data_dir() / "tiles", user_agent=default_user_agent()
        )
        self.engine = Engine(
            SqliteStore(self.db, lang=s.lang),
            clock=self.clock,
            thresholds=s.thresholds,
            sinks=[LogSink()],
        )
        if not s.bot_enabled:
            log.warning(
                "TELEGRAM_BOT_TOKEN is not set: the Telegram bot is disabled; alerts are "
                "only logged (logger ontwatch.alerts)"
            )
        self.loopwatch.start()
        if s.postgres_url is None:
            await self._lead()
            await self._start_http()
        else:
            await self._stand_by(s.postgres_url)
            await self._start_http()
            assert self.role is not None
            self.role.start()  # takes the lease now if nobody holds it
        # What start-up built (modules, the inventory, the state) lives as long as the process:
        # out of the collector's passes, so that a 20,000-item push does not re-scan it often.
        gc.freeze()
        log.info(
            "ontwatch serving %d ONTs on http://%s:%d (database %s)",
            len(EngineView(self.engine)),
            s.http_host,
            self.port,
            getattr(self.db, "target", s.db),
        )

    async def _lead(self, epoch: int = 0) -> None:
        """The leader's duties: bot, engine writer, agents' desk, demo seed, jobs, prober."""
        assert self.engine is not None and self.db is not None and self.reads is not None
        s = self.settings
        if s.bot_enabled:
            from bot.runtime import BotRuntime  # PTB is loaded only when the bot is on

            self.bot = BotRuntime(
                bot_config(s),
                bot_stores(self.db),
                self.reads,
                clock=self.clock,
                renderer=self.maps,
            )
            self.bot.epoch = epoch  # outbox rows are claimed under it (0: no lease, SQLite)
            self.engine.router = await self.bot.load()  # alert chats + area subscriptions
            self.engine.add_sink(self.bot.sink)  # wakes delivery after each commit
        await self.engine.start()
        await self._start_desk()
        if self.bot is not None:
            await self.bot.start(self.engine)  # connects in the background; never blocks start
        if self.demo and not len(EngineView(self.engine)):
            await seed_demo(self.engine, self.clock())
        self._start_jobs()
        self._start_prober()

    async def _stand_by(self, url: str) -> None:
        """A standby's read side (the follower) and the role manager that may promote it."""
        from monitor.follower import Follower
        from storage.follow import FollowReads
        from storage.leadership import Lease

        assert self.engine is not None and self.db is not None
        follow = FollowReads(self.db)
        self.follower = Follower(self.engine, follow, follow, self._listener())
        await self.follower.start()
        s = self.settings
        lease = await Lease(url, s.instance_name, s.lease_seconds).open()
        self.role = RoleManager(lease, become_leader=self._take_over, on_lost=self._lose_lease)
        log.info(
            "standby as %s: following the leader; takes over when the lease (%.1f s) runs out",
            s.instance_name,
            s.lease_seconds,
        )

    def _listener(self) -> Any:
        """The follower's listen(wake): NOTIFY ontwatch_commit on a connection of its own that
        ends when it is lost, so the follower polls until it listens again (None on SQLite)."""
        from storage.follow import commit_listener

        return commit_listener(self.db)

    async def _take_over(self, epoch: int) -> None:
        """The lease is ours: stop following, fence every write, load the state, lead."""
        assert self.db is not None and self.role is not None
        if self.follower is not None:
            await self.follower.promote()
            self.follower = None
        self.db.fence = self.role.lease.fence(self.role.fence_lost)  # type: ignore[attr-defined]
        await self._lead(epoch)
        log.info("leader (epoch %d): the engine, prober, jobs and delivery run here", epoch)

    def _lose_lease(self, reason: str) -> None:
        """Stop at once: every write is already refused by the fence; the process exits."""
        self.exit_code = EXIT_LOST_LEASE
        self.lease_lost.set()
        if self._stopping is not None:
            self._stopping.set()

    def leadership(self) -> Leadership:
        """Who leads: the role manager's view, or this instance alone (SQLite)."""
        if self.role is not None:
            return self.role.leadership()
        name = self.settings.instance_name
        return Leadership(LEADER, name, name, self.started_at, None)

    def _leader_elsewhere(self) -> str | None:
        """None while this instance may write; else the leader's name ('' if none)."""
        if self.role is None:
            return None
        who = self.role.leadership()
        if who.role == LEADER and self.engine is not None and self.engine.writer_alive():
            return None
        return who.leader if who.leader and who.leader != who.instance else ""

    async def _start_desk(self) -> None:
        """The agents' desk, as engine.agents before the prober and HTTP start.

        Always there, with or without agents: one added by `ontwatch agents add` while the
        service runs is picked up by the desk's reload (check() re-reads the table), and the
        central prober must know from its first sweep which ONTs are an agent's to sweep.
        """
        assert self.engine is not None and self.db is not None
        s = self.settings
        self.desk = AgentDesk(
            Agents(self.db),
            self.engine,
            self.clock,
            lost_after=s.agent_lost_after,
            default_interval=s.probe_interval,
        )
        await self.desk.start()
        self.engine.agents = self.desk

    def _start_jobs(self) -> None:
        assert self.engine is not None and self.db is not None
        # APScheduler logs every job added ("Adding job tentatively") and every run at INFO.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        s, engine, db = self.settings, self.engine, self.db
        backup_dir = s.backup_dir or self.data_dir() / "backups"

        async def backup_job() -> None:
            try:
                path = await asyncio.to_thread(backups.backup, s.db, backup_dir, s.backup_keep)
            except backups.BackupFailed as exc:  # kept aside; /healthz reports it too
                log.error("%s; the good backups were left in place", exc)
                alerts_log.error("ALERT CRITICAL %s", exc)
                return
            log.info("backup written: %s", path)

        async def persist_seen_job() -> None:
            written = await engine.persist_seen()
            log.debug("last_seen of %d steady ONTs written", written)

        async def retention_job() -> None:
            counts = await retention.prune(db, self.clock(), timedelta(days=s.retention_days))
            log.info("retention: deleted %s", counts)

        async def sessions_job() -> None:
            pruned = await Users(db).prune_sessions(self.clock(), self.session_policy())
            if pruned:
                log.info("sessions: %d expired login sessions deleted", pruned)

        self.scheduler = build_scheduler(
            [
                Job("tick", lambda: engine.tick(), every=s.tick_seconds),
                # Writes follow changes, not the clock: steady probes' last_seen is written
                # coarsely (and at shutdown, by Engine.stop), not by every tick.
                Job("last_seen", persist_seen_job, every=s.seen_persist_minutes * 60),
                # PostgreSQL is backed up with pg_dump, the operator's tool (docs/operations.md)
                *(
                    [Job("backup", backup_job, every=s.backup_every_hours * 3600)]
                    if isinstance(s.db, Path)
                    else []
                ),
                Job("retention", retention_job, every=s.retention_every_hours * 3600),
                Job("sessions", sessions_job, every=3600),
                # liveness of the probe agents, config reloads, contact figures saved
                *([Job("agents", self.desk.check, every=1)] if self.desk is not None else []),
            ]
        )
        self.scheduler.start()

    def _start_prober(self) -> None:
        assert self.engine is not None
        s = self.settings
        if s.probe is False:
            log.info("ICMP probing is off (ONTWATCH_PROBE=off): only pushes update the state")
            return
        sweeper = Sweeper(timeout=s.probe_timeout)
        if sweeper.mode == "none":
            log.error("ICMP probing unavailable: %s", sweeper.mode_reason)
        else:
            log.info(
                "ICMP probing with %s sockets (%s), every %.1f s",
                sweeper.mode,
                sweeper.mode_reason,
                s.probe_interval,
            )
        self.sweeper = sweeper
        self.prober = Prober(
            self.engine,
            sweeper,
            interval=s.probe_interval,
            clock=self.clock,
            silent_share=s.health_silent_share,
        )
        self.prober.start()

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """The /healthz checks."""
        assert self.db is not None and self.engine is not None
        s = self.settings
        ok, detail = await health.check(
            loop=self.loopwatch,
            db=self.db,
            writer_alive=self.engine.writer_alive,
            bot_enabled=self.bot is not None,
            now=self.clock(),
            backup_dir=(s.backup_dir or self.data_dir() / "backups")
            if isinstance(s.db, Path)
            else None,
            leadership=self.leadership() if self.role is not None else None,
        )
        follower = self.follower
        if follower is not None and (follower.failing or not follower.running()):
            why = follower.failing or "not running"
            detail["problems"].append(f"the standby does not follow the leader's commits: {why}")
            ok = False
        return ok, detail

    async def metrics(self) -> tuple[bytes, str]:
        """The /metrics exposition."""
        assert self.db is not None and self.engine is not None
        pending, oldest = await health.outbox_age(self.db, self.clock())
        by_state = await OutboxStore(self.db).counts()
        delivery = self.bot.delivery if self.bot is not None else None
        lag = self.loopwatch.lag_quantiles()
        scrape = metrics.Scrape(
            pending, oldest, by_state, lag, now=self.clock(), leadership=self.leadership()
        )
        view = EngineView(self.engine)
        collector = metrics.OntwatchCollector(
            view, self.engine, self.prober, delivery, scrape, self.events
        )
        return metrics.render(collector)

    def _last_event_id(self) -> int | None:
        """The event stream's newest frame id (pages start their stream there)."""
        hub = getattr(self, "events", None)
        return hub.last_id if hub is not None else None

    async def _start_http(self) -> None:
        assert self.engine is not None and self.reads is not None
        s = self.settings
        deps = ApiDeps(
            engine=self.engine,
            reads=self.reads,
            clock=self.clock,
            tz=s.tz,
            renderer=self.maps,
            health=self.health,
            metrics=self.metrics,
            lang=s.lang,
        )
        app = create_app(deps)
        # web pages (web/app.py) are added here
        from web import app as web_app

        web_app.setup(
            app,
            web_app.WebDeps(
                view=EngineView(self.engine),
                reads=self.reads,
                clock=self.clock,
                tz=s.tz,
                lang=s.lang,
                renderer=self.maps,
                last_event_id=self._last_event_id,
            ),
        )
        # the live event stream (web/events.py) is added here
        from web.events import EventHub

        self.events = EventHub(EngineView(self.engine), self.reads, lang=s.lang)
        self.events.install(app)
        await self.events.start()
        # access control and security headers (web/auth.py) are added here
        access.install(app, self.access_config())
        if self.role is not None:  # a standby answers writes 503 naming the leader
            from web import standby

            standby.install(app, self._leader_elsewhere)
        # Idle sockets are closed after IDLE_TIMEOUT (also before their first request), and
        # connections beyond a cap below RLIMIT_NOFILE get a 503 (ontwatch/connections.py).
        self.runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=connections.IDLE_TIMEOUT
        )
        await self.runner.setup()
        cap = connections.connection_cap()
        site = connections.CappedSite(self.runner, s.http_host, s.http_port, cap=cap)
        try:
            await site.start()
        except OSError as exc:
            raise bind_error(s.http_host, s.http_port, exc) from None
        sockets = site.sockets
        self.port = sockets[0].getsockname()[1] if sockets else s.http_port
        log.info(
            "HTTP: at most %d connections, idle ones closed after %.0f s",
            cap,
            connections.IDLE_TIMEOUT,
        )

    async def stop(self) -> None:
        """Stop serving, let the engine finish queued writes, release the lease, close the
        database."""
        if self.role is not None and self.role.role != LEADER:
            await self.role.halt()  # no takeover half-way through the shutdown
        elif self.role is not None:
            await self.role.duties_settled()  # a takeover's duties finish starting first
        if self.follower is not None:
            await self.follower.stop()
            self.follower = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.bot is not None:
            await self.bot.stop()  # in-flight sends finish (bounded); the rest stay pending
            self.bot = None
        if self.maps is not None:
            await self.maps.close()
            self.maps = None
        if self.prober is not None:
            await self.prober.stop()
            self.prober = None
        if self.sweeper is not None:
            self.sweeper.close()
            self.sweeper = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.events is not None:
            await self.events.stop()  # before the engine: no feed item arrives half-way
            self.events = None
        if self.desk is not None:
            try:
                await self.desk.stop()  # its contact figures, while the database is open
            except Exception:  # the engine must still flush its queued writes
                log.exception("probe agents: contact figures not saved at shutdown")
            self.desk = None
        if self.engine is not None:
            await self.engine.stop()
        await self.loopwatch.stop()
        if self.role is not None:
            await self.role.stop()  # after the last write: a standby takes over at once
            self.role = None
        if self.db is not None:
            await self.db.close()
        log.info("ontwatch stopped")

    async def run_until_signal(self) -> int:
        """Start, wait for SIGINT or SIGTERM (or a lost lease), stop; the exit status."""
        loop = asyncio.get_running_loop()
        stop = self._stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        self.check()  # a refusal is one line, with nothing opened yet
        try:
            await self.start()
        except BaseException:
            await self.stop()  # e.g. port in use: close what was opened, so the process exits
            raise
        try:
            await stop.wait()
            if self.exit_code != EXIT_LOST_LEASE:
                log.info("signal received, shutting down")
        finally:
            if self.exit_code == EXIT_LOST_LEASE:
                await self._stop_bounded()
            else:
                await self.stop()
        return self.exit_code

    async def _stop_bounded(self) -> None:
        """After a lost lease: stop within LOST_LEASE_STOP_SECONDS, or exit regardless (the
        fence keeps every write out either way; a hung shutdown must not keep a standby from
        being started in our place)."""
        try:
            await asyncio.wait_for(self._step_down(), LOST_LEASE_STOP_SECONDS)
        except Exception:
            log.exception("shutdown after the lost lease failed; exiting %d", EXIT_LOST_LEASE)
            logging.shutdown()
            os._exit(EXIT_LOST_LEASE)

    async def _step_down(self) -> None:
        """The duties first (Telegram polling, delivery, probes, jobs: the new leader runs
        them now), then a moment in which HTTP answers what it already received (writes 503:
        a frozen leader's backlog of pushes is refused, not reset), then the rest."""
        if self.bot is not None:
            await self.bot.stop()
            self.bot = None
        if self.prober is not None:
            await self.prober.stop()
            self.prober = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await asyncio.sleep(LOST_LEASE_GRACE_SECONDS)
        await self.stop()


def bot_config(s: Settings) -> BotConfig:
    """The bot's part of the settings."""
    assert s.telegram_bot_token is not None
    return BotConfig(
        token=s.telegram_bot_token.get_secret_value(),
        api_url=s.telegram_api_url,
        alert_chats=s.alert_chats,
        allowed=s.chats_allowed,
        lang=s.lang,
        tz=s.tz,
        group_wait=s.group_wait,
        status_message=s.status_message,
        status_message_off=frozenset(s.status_message_off),
        status_every=s.status_every,
        edit_window=s.edit_window,
    )


def bot_stores(db: Database) -> BotStores:
    """The bot's tables."""
    return BotStores(OutboxStore(db), ChatPrefs(db), Subscriptions(db), BotMessages(db))


async def open_database(target: Path | str) -> Database:
    """The database, or a SettingsError naming ONTWATCH_DB (exit 78) when it cannot be opened
    (a PostgreSQL URL is named with its password masked)."""
    db = database_for(target)
    errors = (OSError, sqlite3.Error, *getattr(db, "down_errors", ()))
    try:
        return await db.open()  # type: ignore[return-value]
    except errors as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        where = getattr(db, "target", target)
        raise SettingsError(f"ONTWATCH_DB: cannot open {where}: {reason}") from None


def bind_error(host: str, port: int, exc: OSError) -> SettingsError:
    """Why the HTTP socket could not be opened, naming the setting to change (exit 78)."""
    if isinstance(exc, socket.gaierror):
        return SettingsError(f"ONTWATCH_HTTP_HOST: cannot resolve {host!r}: {exc.strerror}")
    if exc.errno == errno.EADDRINUSE:
        return SettingsError(
            f"ONTWATCH_HTTP_PORT: port {port} on {host} is taken (address already in use): "
            "stop the other program or choose another port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return SettingsError(f"ONTWATCH_HTTP_HOST: {host} is not an address of this machine")
    if exc.errno == errno.EACCES:
        return SettingsError(f"ONTWATCH_HTTP_PORT: port {port} needs privileges; use 1024 or above")
    return SettingsError(f"ONTWATCH_HTTP_HOST/ONTWATCH_HTTP_PORT: cannot listen: {exc}")


async def seed_demo(engine: Engine, now: datetime) -> None:
    """Fill an empty inventory with the demo ONTs, all ON as a silent baseline."""
    onts = demo_inventory()
    baseline = [Observation.push(o.id, Status.ON, 0, now, source=Source.IMPORT) for o in onts]
    await engine.upsert(onts, baseline)
    log.info("demo: created %d ONTs in %d areas", len(onts), len({o.area for o in onts}))
