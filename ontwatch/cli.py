"""The `ontwatch` command: run, simulate, import, export, backup."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from api.records import ImportFormatError, export_record, export_text, parse_import
from monitor.engine import Engine, UnknownOnt
from monitor.model import Observation, Source, Status
from monitor.records import decision_json
from ontwatch.logs import setup_logging
from ontwatch.service import Service, utcnow
from ontwatch.settings import Settings, SettingsError, load_settings
from ontwatch.users_cli import add_parser as add_user_parser
from ontwatch.users_cli import run as run_user
from storage import backup as backups
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore

SIMULATE_STEPS: list[tuple[Status, int]] = [
    (Status.OFF, 0),
    (Status.ON, 0),
    (Status.OFF, 1),
    (Status.ON, 0),
    (Status.OFF, 3),
]


class ApiClient:
    """The running service's HTTP API, for CLI commands (stdlib only, short timeouts)."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.api_base_url()
        self.token = settings.api_token.get_secret_value() if settings.api_token else None

    def running(self) -> bool:
        """Whether an ontwatch service answers on the configured address."""
        try:
            body = self.call("GET", "/healthz", timeout=1.0, ok_statuses=(200, 503))
        except (OSError, ValueError):
            return False
        return isinstance(body, dict) and "ok" in body

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "",
        timeout: float = 30.0,
        ok_statuses: Sequence[int] = (200, 201),
    ) -> Any:
        """One request; returns the decoded JSON, or raises CliError with the API's message."""
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            if exc.code in ok_statuses:
                return json.loads(payload or b"null")
            try:
                err = json.loads(payload)
                message = f"{err.get('error')}: {err.get('detail')}"
            except ValueError:
                message = payload.decode(errors="replace")[:200]
            raise CliError(f"HTTP {exc.code}: {message}") from None


class CliError(Exception):
    """A failure to report in one line, exit status 1."""


@asynccontextmanager
async def offline_engine(settings: Settings) -> AsyncIterator[tuple[Engine, Queries]]:
    """The engine on the database file directly, for when the service is not running."""
    db = await Database(settings.db).open()
    store = SqliteStore(db, lang=settings.lang)  # notifications' stored message: service language
    engine = Engine(store, clock=utcnow, thresholds=settings.thresholds)
    await engine.start()
    try:
        yield engine, Queries(db)
    finally:
        await engine.stop()
        await db.close()


def _print_step(n: int, status: Status, rto: int, result: dict[str, Any]) -> None:
    events = (
        ", ".join(
            f"{e['kind']} {e['severity']}"
            + (f" after {e['duration_s']:.0f}s down" if e.get("duration_s") is not None else "")
            for e in result.get("events", [])
        )
        or "no new alert"
    )
    print(
        f"step {n}/5: push {status.value} rto {rto} -> status {result['status']}, "
        f"rto {result['rto_count']}, severity {result['severity']} ({events})",
        flush=True,
    )


def cmd_simulate(settings: Settings, ont_id: str, delay: float) -> int:
    """The five-step test sequence: OFF rto 0, ON, OFF rto 1, ON, OFF rto 3."""
    client = ApiClient(settings)
    if client.running():
        print(f"service running at {client.base}: pushing through its API", flush=True)
        for n, (status, rto) in enumerate(SIMULATE_STEPS, start=1):
            body = json.dumps({"status": status.value, "rto_count": rto}).encode()
            result = client.call(
                "POST",
                f"/api/ont-status/{ont_id}?source=simulate",
                body,
                content_type="application/json",
            )
            _print_step(n, status, rto, result)
            if n < len(SIMULATE_STEPS):
                time.sleep(delay)
        return 0

    async def offline() -> None:
        async with offline_engine(settings) as (engine, _):
            print(f"service not running: writing to {settings.db} directly", flush=True)
            for n, (status, rto) in enumerate(SIMULATE_STEPS, start=1):
                obs = Observation.push(ont_id, status, rto, utcnow(), source=Source.SIMULATE)
                try:
                    decision = await engine.ingest(obs)
                except UnknownOnt as exc:
                    raise CliError(str(exc)) from None
                _print_step(n, status, rto, decision_json(decision))
                if n < len(SIMULATE_STEPS):
                    await asyncio.sleep(delay)

    asyncio.run(offline())
    return 0


def cmd_import(settings: Settings, path: Path) -> int:
    """Import an onts.json or CSV file; prints the per-row report of refused rows."""
    data = path.read_bytes()
    ctype = "text/csv" if path.suffix.lower() == ".csv" else "application/json"
    client = ApiClient(settings)
    if client.running():
        report = client.call("POST", "/api/onts/import", data, content_type=ctype, timeout=120)
    else:
        try:
            plan = parse_import(data, ctype)
        except (ImportFormatError, UnicodeDecodeError) as exc:
            raise CliError(f"{path}: {exc}") from None

        async def offline() -> dict[str, Any]:
            from api.app import apply_import

            async with offline_engine(settings) as (engine, _):
                return await apply_import(engine, plan, settings.tz, utcnow())

        report = asyncio.run(offline())
    print(
        f"{path}: {report['imported']} imported ({report['created']} new, "
        f"{report['updated']} updated), {report['refused']} refused"
    )
    for row in report["rows"]:
        for err in row["errors"]:
            print(f"  row {row['row']} (id {row['id']}): refused: {err['field']}: {err['message']}")
        for warning in row["warnings"]:
            print(f"  row {row['row']} (id {row['id']}): warning: {warning}")
    return 0 if report["refused"] == 0 else 2


def cmd_export(settings: Settings, path: Path) -> int:
    """Write the inventory and state in the older onts.json format (or CSV by extension)."""

    async def read() -> list[dict[str, Any]]:
        # A read-only connection: safe beside a running service (WAL).
        if not settings.db.exists():
            raise CliError(f"database {settings.db} does not exist")
        db = await Database(settings.db).open()
        try:
            pairs = await Queries(db).onts()
        finally:
            await db.close()
        return [export_record(o, s, settings.tz) for o, s in pairs]

    records = asyncio.run(read())
    fmt = "csv" if path.suffix.lower() == ".csv" else "json"
    path.write_text(export_text(records, fmt), encoding="utf-8")
    print(f"{path}: {len(records)} ONTs exported as {fmt}")
    return 0


def cmd_backup(settings: Settings, keep: int | None) -> int:
    """An online backup of the database, rotated."""
    target_dir = settings.backup_dir or settings.db.parent / "backups"
    try:
        target = backups.backup(settings.db, target_dir, keep or settings.backup_keep)
    except (FileNotFoundError, backups.BackupFailed) as exc:
        raise CliError(str(exc)) from None  # a failed copy is kept in <dir>/failed/
    print(f"backup written: {target} ({target.stat().st_size} bytes)")
    return 0


def cmd_restore(settings: Settings, backup_file: Path) -> int:
    """Replace the database with a backup that passes its integrity check; service stopped."""
    if ApiClient(settings).running():
        raise CliError("the service is running: stop it first (systemctl stop ontwatch)")
    if not backup_file.is_file():
        raise CliError(f"{backup_file}: no such backup file")
    try:
        kept = backups.restore(backup_file, settings.db)
    except backups.BackupFailed as exc:
        raise CliError(f"{exc}; the database was not changed") from None
    print(f"restored {settings.db} from {backup_file}")
    if kept is not None:
        print(f"the previous database is kept as {kept}")
    return 0


def cmd_run(settings: Settings, demo: bool) -> int:
    """Run the service until SIGINT/SIGTERM."""
    secrets = [t.get_secret_value() for t in (settings.telegram_bot_token, settings.api_token) if t]
    setup_logging(settings.log_level, json_lines=settings.log_json, secrets=secrets)
    asyncio.run(Service(settings, demo=demo).run_until_signal())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(prog="ontwatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the monitor service")
    run.add_argument("--demo", action="store_true", help="seed a demo inventory when empty")
    sim = sub.add_parser("simulate", help="push the five-step test sequence for one ONT")
    sim.add_argument("ont_id")
    sim.add_argument("--delay", type=float, default=1.0, help="seconds between steps")
    imp = sub.add_parser("import", help="import an onts.json or CSV file")
    imp.add_argument("file", type=Path)
    exp = sub.add_parser("export", help="export the inventory (JSON, or CSV by extension)")
    exp.add_argument("file", type=Path)
    bak = sub.add_parser("backup", help="online backup of the database, rotated")
    bak.add_argument("--keep", type=int, default=None)
    res = sub.add_parser("restore", help="replace the database with a backup (service stopped)")
    res.add_argument("file", type=Path)
    add_user_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            if args.demo and settings.probe is None:
                settings = settings.model_copy(update={"probe": False})
            return cmd_run(settings, args.demo)
        if args.command == "simulate":
            return cmd_simulate(settings, args.ont_id, args.delay)
        if args.command == "import":
            return cmd_import(settings, args.file)
        if args.command == "export":
            return cmd_export(settings, args.file)
        if args.command == "backup":
            return cmd_backup(settings, args.keep)
        if args.command == "user":
            return run_user(settings, args)
        if args.command == "restore":
            return cmd_restore(settings, args.file)
    except SettingsError as exc:
        print(f"ontwatch: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except (CliError, OSError) as exc:
        print(f"ontwatch: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
