"""ontwatch watches a small ISP's ONTs and tells the technicians in Telegram.

Commands work whether or not the service runs: when it answers on the configured address
they go through its HTTP API, otherwise they use the database (ONTWATCH_DB) directly.
Each command's --help has an example."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from api.records import ImportFormatError, export_record, export_text, parse_import, report_lines
from api.spreadsheet import XLSX_TYPE
from monitor.engine import Engine
from monitor.model import Observation, Ont, OntState, Source, Status
from monitor.records import decision_json, ont_json
from monitor.view import EngineView
from ontwatch.agents_cli import add_parser as add_agents_parser
from ontwatch.agents_cli import run as run_agents
from ontwatch.demo import fresh_demo_database
from ontwatch.logs import setup_logging
from ontwatch.migrate_cli import add_parser as add_migrate_parser
from ontwatch.migrate_cli import run as run_migrate
from ontwatch.service import Service, utcnow
from ontwatch.settings import Settings, SettingsError, load_settings
from ontwatch.table import ONT_HEADERS, area_lines, longest_down_first, ont_rows, render
from ontwatch.users_cli import add_parser as add_user_parser
from ontwatch.users_cli import run as run_user
from storage import backup as backups
from storage.database import open_database
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
            raise CliError(f"HTTP {exc.code}: {message}", status=exc.code) from None

    def pages(self, path: str, query: Mapping[str, str]) -> list[Any]:
        """Every item of a paged list (GET /api/onts...), following its X-Next-After cursor."""
        items: list[Any] = []
        after: str | None = None
        for _ in range(100_000):  # bounded: a cursor that never ends is a bug, not a loop
            params = {**query, "limit": "1000", **({"after": after} if after else {})}
            req = urllib.request.Request(f"{self.base}{path}?{urlencode(params)}")
            if self.token:
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    page = json.loads(resp.read() or b"[]")
                    after = resp.headers.get("X-Next-After")
            except urllib.error.HTTPError as exc:
                raise CliError(f"HTTP {exc.code} on {path}", status=exc.code) from None
            items.extend(page)
            if not after:
                return items
        raise CliError(f"{path}: the list did not end")


class CliError(Exception):
    """A failure to report in one line, exit status 1 (status: the HTTP code, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@asynccontextmanager
async def offline_engine(settings: Settings) -> AsyncIterator[tuple[Engine, Queries]]:
    """The engine on the database file directly, for when the service is not running."""
    db = await open_database(settings.db).open()
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
            try:
                result = client.call(
                    "POST",
                    f"/api/ont-status/{quote(ont_id, safe='')}?source=simulate",
                    body,
                    content_type="application/json",
                )
            except CliError as exc:
                if exc.status == 404:
                    raise CliError(unknown_ont(ont_id, fetch_onts(settings)[0])) from None
                raise
            _print_step(n, status, rto, result)
            if n < len(SIMULATE_STEPS):
                time.sleep(delay)
        return 0

    async def offline() -> None:
        async with offline_engine(settings) as (engine, _):
            view = EngineView(engine)
            if ont_id not in view:
                raise CliError(unknown_ont(ont_id, [o.record() for _, o in view.onts().items()]))
            print(f"service not running: writing to {settings.db_name} directly", flush=True)
            for n, (status, rto) in enumerate(SIMULATE_STEPS, start=1):
                obs = Observation.push(ont_id, status, rto, utcnow(), source=Source.SIMULATE)
                decision = await engine.ingest(obs)
                _print_step(n, status, rto, decision_json(decision))
                if n < len(SIMULATE_STEPS):
                    await asyncio.sleep(delay)

    asyncio.run(offline())
    return 0


def unknown_ont(ont_id: str, onts: Sequence[Mapping[str, Any]]) -> str:
    """An unknown id, and how to find the right one (a customer id is a common mix-up)."""
    message = f"unknown ONT id {ont_id!r}"
    owners = [o["id"] for o in onts if o.get("customer_id") == ont_id]
    if len(owners) == 1:
        return f"{message}: {ont_id} is the customer id (id_pelanggan) of ONT {owners[0]}"
    return f"{message}; `ontwatch list` shows the ids (the `id` column of the import file)"


def content_type_of(path: Path) -> str:
    """The import's content type from the file name; '' lets the importer look at the bytes."""
    return {
        ".xlsx": XLSX_TYPE,
        ".csv": "text/csv",
        ".tsv": "text/csv",
        ".txt": "text/csv",
        ".json": "application/json",
    }.get(path.suffix.lower(), "")


def cmd_import(settings: Settings, path: Path, dry_run: bool, sheet: str | None) -> int:
    """Import an onts.json, CSV or .xlsx file; prints the report (nothing changes with dry_run)."""
    data = path.read_bytes()
    ctype = content_type_of(path)
    client = ApiClient(settings)
    if client.running():
        query = urlencode({k: v for k, v in (("sheet", sheet), ("dry_run", dry_run)) if v})
        print(f"through the running service at {client.base}", flush=True)
        report = client.call(
            "POST",
            "/api/onts/import" + (f"?{query}" if query else ""),
            data,
            content_type=ctype or "application/octet-stream",
            timeout=120,
        )
    else:
        try:
            plan = parse_import(data, ctype, sheet)
        except (ImportFormatError, UnicodeDecodeError) as exc:
            raise CliError(f"{path}: {exc}") from None

        async def offline() -> dict[str, Any]:
            from api.app import apply_import

            async with offline_engine(settings) as (engine, _):
                return await apply_import(engine, plan, settings.tz, utcnow(), dry_run=dry_run)

        print(f"service not running: directly in the database {settings.db_name}", flush=True)
        report = asyncio.run(offline())
    for line in report_lines(report, str(path)):
        print(line)
    if dry_run:
        print("dry run: nothing was changed")
    return 0 if report["refused"] == 0 else 2


async def _read_db(settings: Settings) -> list[tuple[Ont, OntState]]:
    """Every ONT from the database file (a read-only use: safe beside a running service)."""
    if isinstance(settings.db, Path) and not settings.db.exists():
        raise CliError(f"database {settings.db} does not exist (ONTWATCH_DB)")
    db = await open_database(settings.db).open()
    try:
        return await Queries(db).onts()
    finally:
        await db.close()


def fetch_onts(
    settings: Settings, status: Status | None = None, area: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """ONTs as the API shows them, through the running service or from the database; where."""
    client = ApiClient(settings)
    if client.running():
        query = {k: v for k, v in (("status", status), ("area", area)) if v is not None}
        return client.pages("/api/onts", query), f"through the running service at {client.base}"
    pairs = asyncio.run(_read_db(settings))
    picked = [
        ont_json(o, s, settings.lang)
        for o, s in pairs
        if (status is None or s.status is status) and (area is None or o.area == area)
    ]
    return picked, f"from the database {settings.db_name}: the service is not running"


def cmd_list(settings: Settings, offline: bool, area: str | None) -> int:
    """A table of ONTs: all, or only those OFF (longest down first), or one area's."""
    onts, where = fetch_onts(settings, Status.OFF if offline else None, area)
    if offline:
        onts = list(longest_down_first(onts))
    if not onts:
        what = "offline " if offline else ""
        print(f"no {what}ONTs" + (f" in area {area!r}" if area else "") + f", {where}")
        return 0
    print(render(ONT_HEADERS, ont_rows(onts, utcnow(), settings.tz)))
    print(f"{len(onts)} ONTs, {where}")
    return 0


def cmd_areas(settings: Settings) -> int:
    """Areas with their counts, and the names that look like one area written differently."""
    onts, where = fetch_onts(settings)
    for line in area_lines(onts):
        print(line)
    print(where)
    return 0


def cmd_areas_rename(settings: Settings, old: str, new: str) -> int:
    """Merge area OLD into NEW, through the running service when it runs."""
    client = ApiClient(settings)
    if client.running():
        body = json.dumps({"old": old, "new": new}).encode()
        try:
            moved = client.call("POST", "/api/areas/rename", body, content_type="application/json")
        except CliError as exc:
            if exc.status == 404:
                raise CliError(f"no ONT is in area {old!r}; `ontwatch areas` lists them") from None
            raise
        where = f"through the running service at {client.base}"
        count = moved["moved"]
    else:

        async def offline() -> int:
            async with offline_engine(settings) as (engine, _):
                if old not in EngineView(engine).areas():
                    raise CliError(f"no ONT is in area {old!r}; `ontwatch areas` lists them")
                return await engine.rename_area(old, new)

        count = asyncio.run(offline())
        where = f"directly in the database {settings.db_name}"
    print(f"area {old!r} renamed to {new!r}: {count} ONTs moved ({where})")
    return 0


def cmd_export(settings: Settings, path: Path) -> int:
    """Write the inventory and state as onts.json (or CSV by extension), atomically."""
    if isinstance(settings.db, Path) and path.resolve() == settings.db.resolve():
        raise CliError(f"{path} is the database itself (ONTWATCH_DB): choose another file")
    records = [export_record(o, s, settings.tz) for o, s in asyncio.run(_read_db(settings))]
    fmt = "csv" if path.suffix.lower() == ".csv" else "json"
    # CSV with a BOM: Excel opens it as UTF-8. Written aside, then renamed: never half a file.
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(export_text(records, fmt), encoding=encoding, newline="")
    partial.replace(path)
    print(f"{path}: {len(records)} ONTs exported as {fmt}")
    return 0


def cmd_backup(settings: Settings, keep: int | None) -> int:
    """An online backup of the database, rotated (PostgreSQL: the operator's pg_dump)."""
    if settings.postgres_url is not None:
        raise CliError(backups.use_pg_dump(settings.postgres_url))
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
    if settings.postgres_url is not None:
        raise CliError(backups.use_pg_dump(settings.postgres_url, restore=True))
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


def demo_settings(settings: Settings) -> Settings:
    """The demo runs on its own fresh database (never ONTWATCH_DB), without probing by default."""
    try:
        db = fresh_demo_database(settings.data_dir / "ontwatch.db")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    update: dict[str, Any] = {"db": db}
    if settings.probe is None:
        update["probe"] = False
    print(f"demo: a fresh demo database {db} (ONTWATCH_DB {settings.db_name} is not touched)")
    return settings.model_copy(update=update)


def cmd_run(settings: Settings, demo: bool) -> int:
    """Run the service until SIGINT/SIGTERM."""
    tokens = (settings.telegram_bot_token, settings.api_token, settings.read_token)
    secrets = [t.get_secret_value() for t in tokens if t]
    setup_logging(settings.log_level, json_lines=settings.log_json, secrets=secrets)
    # 0, or 75 (EX_TEMPFAIL) when the lease was lost: the supervisor restarts it as a standby
    return asyncio.run(Service(settings, demo=demo).run_until_signal())


def cmd_agent() -> int:
    """Run a probe agent until SIGINT/SIGTERM; its own settings (agent/settings.py)."""
    from agent.runner import main as run_agent
    from agent.settings import load_agent_settings

    return run_agent(load_agent_settings())


# Every subcommand: a line of description and an example (shown by `ontwatch CMD --help`).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "Run the monitor: ICMP probes and HTTP pushes in, alerts to Telegram (or the log), "
        "the HTTP API and pages. --demo uses its own demo database, recreated at each start.",
        "ontwatch run --demo",
    ),
    "simulate": (
        "Push the five-step test sequence for one ONT (OFF rto 0, ON, OFF rto 1, ON, OFF rto 3) "
        "to see its alerts arrive.",
        "ontwatch simulate 5 --delay 0",
    ),
    "import": (
        "Import ONTs from the older system's onts.json, a CSV file (comma, semicolon or tab; "
        "decimal commas; Indonesian or English headers) or an .xlsx workbook, and print the "
        "report: columns used and not used, areas, refused rows and warnings.",
        "ontwatch import --dry-run pelanggan.xlsx --sheet ONT",
    ),
    "export": (
        "Export the inventory and state as onts.json (JSON), or CSV when the name ends in "
        ".csv; `ontwatch import` reads it back unchanged.",
        "ontwatch export onts-backup.csv",
    ),
    "list": (
        "List ONTs as a table: id, name, area, status, rto, severity, since when.",
        "ontwatch list --offline --area Bumijo",
    ),
    "areas": (
        "List areas with their ONT counts and point out names that look like one area written "
        "differently; `areas rename OLD NEW` merges OLD into NEW.",
        "ontwatch areas rename Surosutan Sorosutan",
    ),
    "backup": (
        "Make an online, checked copy of the database into ONTWATCH_BACKUP_DIR, keeping the "
        "newest ONTWATCH_BACKUP_KEEP.",
        "ontwatch backup --keep 14",
    ),
    "restore": (
        "Replace the database with a backup that passes its integrity check (stop the "
        "service first).",
        "ontwatch restore data/backups/ontwatch-20261127T010000000000Z.db",
    ),
    "user": (
        "Manage the logins of the web pages: add, list, disable, enable, remove.",
        "ontwatch user add budi --role operator",
    ),
    "agent": (
        "Run a probe agent inside a POP (docs/agents.md): sweep the ONTs the centre assigns, "
        "queue each report on disk (ONTWATCH_AGENT_QUEUE) and send it to ONTWATCH_CENTRAL_URL "
        "with the agent's token (ONTWATCH_AGENT_NAME, ONTWATCH_AGENT_TOKEN_FILE); reports wait "
        "in the queue while the centre is unreachable.",
        "ontwatch agent    (with ONTWATCH_CENTRAL_URL=https://noc.example.net, "
        "ONTWATCH_AGENT_NAME=POP-2, ONTWATCH_AGENT_TOKEN_FILE=/etc/ontwatch/agent.token)",
    ),
    "agents": (
        "Probe agents (docs/agents.md): list them with their ONTs, last contact, sweep, queue "
        "and state (--json for machines); add one (its token is printed once), set its areas "
        "and prefixes, give it a new token, revoke or remove it.",
        "ontwatch agents add POP-2 --area Baciro --prefix 10.2.0.0/16",
    ),
    "migrate-db": (
        "Copy a SQLite installation into an empty PostgreSQL database (docs/postgresql.md) in "
        "one transaction and check it row for row; --force replaces a target's data, --verify "
        "only compares. Stop the service first: later changes would not be copied.",
        "ontwatch migrate-db data/ontwatch.db postgresql://ontwatch:secret@db.example/ontwatch",
    ),
}


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("ontwatch")
    except PackageNotFoundError:
        return "0+unknown (not installed)"


def _explain(sub: Any) -> None:
    """Give every subcommand its description and example from COMMANDS."""
    for name, parser in sub.choices.items():
        description, example = COMMANDS.get(name, ("", ""))
        parser.description = textwrap.fill(description, 88) if description else parser.description
        parser.epilog = f"example:\n  {example}" if example else parser.epilog
        parser.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="ontwatch",
        description=__doc__,
        epilog="example:\n  ontwatch run --demo    (then: ontwatch simulate 5)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ontwatch {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the monitor service")
    run.add_argument(
        "--demo", action="store_true", help="a demo inventory in its own database (data/demo.db)"
    )
    sim = sub.add_parser("simulate", help="push the five-step test sequence for one ONT")
    sim.add_argument("ont_id", help="the ONT's id (`ontwatch list` shows them)")
    sim.add_argument("--delay", type=float, default=1.0, help="seconds between steps")
    imp = sub.add_parser("import", help="import an onts.json, CSV or .xlsx file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="print the report, change nothing")
    imp.add_argument("--sheet", help=".xlsx: the sheet to read (default: the first)")
    exp = sub.add_parser("export", help="export the inventory (JSON, or CSV by extension)")
    exp.add_argument("file", type=Path)
    lst = sub.add_parser("list", help="list ONTs as a table")
    lst.add_argument("--offline", action="store_true", help="only OFF ONTs, longest down first")
    lst.add_argument("--area", help="only this area's ONTs")
    areas = sub.add_parser("areas", help="areas with counts; names that look alike; rename")
    areas_sub = areas.add_subparsers(dest="areas_command", metavar="rename")
    ren = areas_sub.add_parser(
        "rename",
        help="merge area OLD into NEW",
        description="Move every ONT of area OLD into area NEW (through the service if it runs).",
        epilog="example:\n  ontwatch areas rename Bumijo-1 Bumijo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ren.add_argument("old", metavar="OLD")
    ren.add_argument("new", metavar="NEW")
    bak = sub.add_parser("backup", help="online backup of the database, rotated")
    bak.add_argument("--keep", type=int, default=None)
    res = sub.add_parser("restore", help="replace the database with a backup (service stopped)")
    res.add_argument("file", type=Path)
    add_user_parser(sub)
    sub.add_parser("agent", help="run a probe agent inside a POP (docs/agents.md)")
    add_agents_parser(sub)
    add_migrate_parser(sub)
    _explain(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "agent":
            return cmd_agent()
        if args.command == "migrate-db":
            return run_migrate(args)
        settings = load_settings()
        if args.command == "run":
            if args.demo:
                settings = demo_settings(settings)
            return cmd_run(settings, args.demo)
        if args.command == "simulate":
            return cmd_simulate(settings, args.ont_id, args.delay)
        if args.command == "import":
            return cmd_import(settings, args.file, args.dry_run, args.sheet)
        if args.command == "list":
            return cmd_list(settings, args.offline, args.area)
        if args.command == "areas" and args.areas_command == "rename":
            return cmd_areas_rename(settings, args.old, args.new)
        if args.command == "areas":
            return cmd_areas(settings)
        if args.command == "export":
            return cmd_export(settings, args.file)
        if args.command == "backup":
            return cmd_backup(settings, args.keep)
        if args.command == "user":
            return run_user(settings, args)
        if args.command == "agents":
            return run_agents(settings, args, ApiClient(settings))
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
