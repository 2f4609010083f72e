"""`ontwatch user add|list|disable|enable|remove`: the web pages' users.

Works with the service running or not: it writes the database (ONTWATCH_DB) directly, and the
service reads users and sessions on every request, so a disabled user is out at once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from ontwatch.service import utcnow
from ontwatch.settings import Settings
from storage.database import open_database
from storage.users import ROLES, UserError, Users

EXAMPLES = """examples:
  ontwatch user add ayu --role operator          (asks for the password twice)
  printf '%s\\n' "$PASSWORD" | ontwatch user add noc --role viewer --password-stdin
  ontwatch user list
  ontwatch user disable ayu                      (ends ayu's sessions at once)
  ontwatch user remove ayu"""


def add_parser(sub: Any) -> None:
    """Register `user` and its subcommands on the main parser's subparsers."""
    user = sub.add_parser(
        "user",
        help="web users: add, list, disable, enable, remove",
        description="Users of the web pages. Roles: viewer (see, mark read) < operator "
        "(also ack and mute) < admin (also inventory writes).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = cmds.add_parser("add", help="create a user (password from a prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    cmds.add_parser("list", help="users, roles, state and open sessions")
    for action, text in (
        ("disable", "disable a user and end their sessions"),
        ("enable", "enable a disabled user"),
        ("remove", "delete a user and their sessions"),
    ):
        cmds.add_parser(action, help=text).add_argument("name")


def run(settings: Settings, args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """Run one `user` subcommand; 0 on success, 1 with a one-line reason otherwise."""
    try:
        if args.user_command == "add":
            password = _password(args.password_stdin, stdin or sys.stdin)
            return _with_users(settings, lambda users: _add(users, args.name, args.role, password))
        if args.user_command == "list":
            return _with_users(settings, _list)
        if args.user_command in ("disable", "enable", "remove"):
            return _with_users(settings, lambda users: _change(users, args.user_command, args.name))
    except UserError as exc:
        print(f"ontwatch: {exc}", file=sys.stderr)
        return 1
    return 2


def _password(from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError("password: the two entries differ")
    return first


def _with_users(settings: Settings, action: Callable[[Users], Awaitable[int]]) -> int:
    async def go() -> int:
        db = await open_database(settings.db).open()
        try:
            return await action(Users(db))
        finally:
            await db.close()

    return asyncio.run(go())


async def _add(users: Users, name: str, role: str, password: str) -> int:
    user = await users.add(name, role, password, utcnow())
    print(f"user {user.name} added ({user.role})")
    return 0


async def _list(users: Users) -> int:
    rows = [("NAME", "ROLE", "STATE", "SESSIONS", "CREATED")]
    for u in await users.all():
        state = "disabled" if u.disabled else "enabled"
        created = u.created_at.strftime("%Y-%m-%d %H:%M UTC")
        rows.append((u.name, u.role, state, str(await users.sessions_of(u.name)), created))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if len(rows) == 1:
        print("(no users: ontwatch user add NAME --role admin)")
    return 0


async def _change(users: Users, action: str, name: str) -> int:
    if action == "remove":
        found = await users.remove(name)
    else:
        found = await users.set_disabled(name, disabled=action == "disable")
    if not found:
        raise UserError(f"user name: no user {name!r}")
    print(f"user {name} {action}d")
    return 0
