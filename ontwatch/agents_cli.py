"""`ontwatch agents [list|add|set|token|revoke|remove]`: the probe agents, configured centrally.

Works with the service running or not. Changes are written to the database (ONTWATCH_DB)
directly, as `ontwatch user` does: the running service's desk reloads the agents every few
seconds, so a new token works and a revoked one stops within seconds. The list shows live
figures from the running service (GET /api/agents); when it is down, what the desk last
saved in the database (last contact, lost since) with the ONT counts computed here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

from monitor.agents import AgentConfig, AgentStatus
from monitor.records import agent_json
from ontwatch.service import utcnow
from ontwatch.settings import Settings
from ontwatch.table import render, span
from storage.agents import AgentError, AgentRow, Agents
from storage.database import open_database
from storage.queries import Queries

HEADERS = ["NAME", "ONTS", "LAST CONTACT", "SWEEP", "QUEUE", "STATE", "AREAS/PREFIXES"]
BAD_INPUT = 2  # like argparse: the command line or a value in it is wrong
EXAMPLES = {
    "list": "ontwatch agents list --json",
    "add": "ontwatch agents add POP-2 --area Baciro --area Gondokusuman --prefix 10.2.0.0/16",
    "set": "ontwatch agents set POP-2 --area Baciro --prefix 10.2.0.0/16",
    "token": "ontwatch agents token POP-2 --token-file /etc/ontwatch/agent.token",
    "revoke": "ontwatch agents revoke POP-2",
    "remove": "ontwatch agents remove POP-2",
}


class Api(Protocol):
    """The running service's API as the CLI reaches it (ontwatch.cli.ApiClient)."""

    base: str

    def running(self) -> bool: ...

    def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any: ...


def add_parser(sub: Any) -> None:
    """Register `agents` and its subcommands on the main parser's subparsers."""
    agents = sub.add_parser(
        "agents",
        help="probe agents: list, add, set, token, revoke, remove",
        description="Probe agents sweep the ONTs of a POP and report to this service "
        "(docs/agents.md). Without an action: the list.",
    )
    agents.add_argument("--json", action="store_true", help="the list as JSON, for machines")
    cmds = agents.add_subparsers(dest="agents_command", metavar="ACTION")
    lst = _action(cmds, "list", "agents: ONTs, last contact, sweep, queue, state")
    lst.add_argument("--json", dest="list_json", action="store_true", help="as JSON")
    for action, text in (
        ("add", "create an agent and print its token once"),
        ("set", "replace an agent's areas and prefixes"),
        ("token", "a new token for an agent (the old one stops working)"),
        ("revoke", "the agent's token stops working; its ONTs go back to the centre"),
        ("remove", "delete an agent from the configuration"),
    ):
        cmd = _action(cmds, action, text)
        cmd.add_argument("name", metavar="NAME")
        if action in ("add", "set"):
            _assignment_args(cmd)
        if action in ("add", "token"):
            _token_file_arg(cmd)


def _action(cmds: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = cmds.add_parser(
        name,
        help=text,
        description=text,
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _assignment_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--area", action="append", default=[], metavar="AREA", help="an area name (repeatable)"
    )
    cmd.add_argument(
        "--prefix",
        action="append",
        default=[],
        metavar="CIDR",
        help="an IP prefix such as 10.2.0.0/16 (repeatable)",
    )


def _token_file_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="write the token to this new file (mode 0600) instead of printing it",
    )


def run(settings: Settings, args: argparse.Namespace, api: Api) -> int:
    """Run one `agents` subcommand; 0 on success, 2 with a one-line reason on bad input."""
    action = args.agents_command or "list"
    try:
        if action == "list":
            return _list(settings, api, as_json=args.json or getattr(args, "list_json", False))
        if action in ("add", "set") and not (args.area or args.prefix):
            raise AgentError(
                "area/prefix: give at least one --area or --prefix (an agent with neither "
                "sweeps nothing)"
            )
        if action == "add":
            return _with_agents(settings, lambda a: _add(a, args))
        if action == "set":
            return _with_agents(settings, lambda a: _set(a, args))
        if action == "token":
            return _with_agents(settings, lambda a: _token(a, args))
        if action in ("revoke", "remove"):
            return _with_agents(settings, lambda a: _end(a, action, args.name))
    except AgentError as exc:
        print(f"ontwatch: {exc}", file=sys.stderr)
        return BAD_INPUT
    return BAD_INPUT


def _with_agents(settings: Settings, action: Callable[[Agents], Awaitable[int]]) -> int:
    async def go() -> int:
        db = await open_database(settings.db).open()
        try:
            return await action(Agents(db))
        finally:
            await db.close()

    return asyncio.run(go())


# -- changes -----------------------------------------------------------------------------


async def _add(agents: Agents, args: argparse.Namespace) -> int:
    _check_token_file(args.token_file)
    token = await agents.add(args.name, args.area, args.prefix, utcnow())
    row = await agents.get(args.name)
    assert row is not None
    print(f"agent {args.name} added: {_assignment_text(row.config)}")
    _give_token(token, args.token_file)
    return 0


async def _set(agents: Agents, args: argparse.Namespace) -> int:
    row = await agents.set_assignment(args.name, args.area, args.prefix)
    print(f"agent {row.config.name}: {_assignment_text(row.config)}")
    print("a running service hands the new assignment to the agent within seconds")
    return 0


async def _token(agents: Agents, args: argparse.Namespace) -> int:
    _check_token_file(args.token_file)
    before = await agents.get(args.name)
    token = await agents.new_token(args.name)
    again = " and reinstated" if before is not None and before.config.revoked else ""
    print(f"agent {args.name}: a new token{again}; the old one no longer works")
    _give_token(token, args.token_file)
    return 0


async def _end(agents: Agents, action: str, name: str) -> int:
    if action == "revoke":
        await agents.revoke(name, utcnow())
        print(f"agent {name} revoked: its token no longer works; its ONTs go back to the centre")
        return 0
    if not await agents.remove(name):
        raise AgentError(f"agent name: no agent {name!r} (ontwatch agents lists them)")
    print(f"agent {name} removed")
    return 0


def _assignment_text(config: AgentConfig) -> str:
    areas = ", ".join(config.areas) or "none"
    prefixes = ", ".join(config.prefixes) or "none"
    return f"areas {areas}; prefixes {prefixes}"


def _check_token_file(path: Path | None) -> None:
    """Refused before anything is stored: a token that cannot be written would be lost."""
    if path is None:
        return
    if path.exists():
        raise AgentError(f"token file: {path} exists (never overwritten; remove it first)")
    if not path.parent.is_dir():
        raise AgentError(f"token file: {path.parent} is not a folder")


def _give_token(token: str, path: Path | None) -> None:
    """The token once: on stdout, or into a new file only its owner can read."""
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        print(
            f"its token is in {path} (mode 0600): the agent reads it as ONTWATCH_AGENT_TOKEN_FILE"
        )
        return
    print("its token, shown only this once (the database keeps only a hash of it):")
    print(f"  {token}")
    print(
        "on the POP machine put it in a file only ontwatch can read, e.g. "
        "/etc/ontwatch/agent.token, and set ONTWATCH_AGENT_TOKEN_FILE to that file"
    )


# -- the list ----------------------------------------------------------------------------


def _list(settings: Settings, api: Api, *, as_json: bool) -> int:
    records, where = _records(settings, api)
    if as_json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    if not records:
        print(f"no agents, {where}; add one: ontwatch agents add NAME --area AREA")
        return 0
    print(render(HEADERS, agent_rows(records, utcnow(), settings.tz)))
    print(f"{len(records)} agents, {where}")
    return 0


def _records(settings: Settings, api: Api) -> tuple[list[dict[str, Any]], str]:
    """Agent records (monitor.records.agent_json) from the running service, else the database."""
    if api.running():
        # 404 answers an error object: a service of a release before agents
        live = api.call("GET", "/api/agents", timeout=10, ok_statuses=(200, 404))
        if isinstance(live, list):
            return live, f"through the running service at {api.base}"
    records = asyncio.run(_stored_records(settings))
    return records, f"from the database {settings.db_name}: the service is not running"


async def _stored_records(settings: Settings) -> list[dict[str, Any]]:
    db = await open_database(settings.db).open()
    try:
        rows = await Agents(db).all()
        counts = await _ont_counts(Queries(db), [r.config for r in rows]) if rows else {}
    finally:
        await db.close()
    return [agent_json(stored_status(r, counts.get(r.config.name, 0))) for r in rows]


async def _ont_counts(queries: Queries, configs: Sequence[AgentConfig]) -> dict[str, int]:
    """How many ONTs each agent is assigned, by the desk's own rule (monitor.agents.assign)."""
    from monitor.agents import assign

    onts = {ont.id: ont for ont, _ in await queries.onts()}
    counts: dict[str, int] = {}
    for agent in assign(onts, configs).values():
        counts[agent] = counts.get(agent, 0) + 1
    return counts


def stored_status(row: AgentRow, onts: int) -> AgentStatus:
    """An agent as the database keeps it (no live figures: no sweep, queue or counters)."""
    return AgentStatus(
        name=row.config.name,
        onts=onts,
        revoked=row.config.revoked,
        last_contact=row.last_contact,
        interval=row.interval,
        lost=row.lost_since is not None,
        lost_since=row.lost_since,
        areas=row.config.areas,
        prefixes=row.config.prefixes,
    )


def agent_rows(records: Sequence[dict[str, Any]], now: datetime, tz: tzinfo) -> list[list[Any]]:
    """Rows of the table from agent records (monitor.records.agent_json)."""
    rows = []
    for r in records:
        sweep = r.get("sweep") or {}
        duration = sweep.get("duration")
        rows.append(
            [
                r["name"],
                r.get("onts", 0),
                _age(_time(r.get("last_contact")), now),
                f"{duration:.2f} s" if isinstance(duration, int | float) else "-",
                r.get("queue_depth", 0),
                _state(r, tz),
                ", ".join([*r.get("areas", []), *r.get("prefixes", [])]),
            ]
        )
    return rows


def _state(record: dict[str, Any], tz: tzinfo) -> str:
    state = str(record.get("state", ""))
    since = _time(record.get("lost_since"))
    if state == "lost" and since is not None:
        return f"lost since {since.astimezone(tz):%Y-%m-%d %H:%M}"
    return state


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    seconds = max(0.0, (now - at).total_seconds())
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{span(seconds)} ago"


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
