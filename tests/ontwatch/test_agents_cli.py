"""`ontwatch agents ...` with the service down: on a real database file (ONTWATCH_DB), through
cli.main in this process and once as a real process. With the service up:
tests/ontwatch/test_service_agents.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.engine import Engine
from monitor.model import Ont, Thresholds
from ontwatch.cli import main
from ontwatch.service import utcnow
from storage.agents import Agents, ContactRow, token_hash
from storage.database import Database
from storage.store import SqliteStore
from tests.process import cli, free_port, service_env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Its own database with four ONTs, and a port where nothing listens (service down)."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)
    db = tmp_path / "ontwatch.db"
    monkeypatch.setenv("ONTWATCH_DB", str(db))
    monkeypatch.setenv("ONTWATCH_HTTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", str(free_port()))
    asyncio.run(seed(db))
    return db


async def seed(path: Path) -> None:
    onts = [Ont(id=str(i), name=f"Baciro {i}", area="Baciro", ip=f"127.0.1.{i}") for i in (1, 2, 3)]
    onts.append(Ont(id="9", name="Bumijo 9", area="Bumijo", ip="127.0.9.9"))
    db = await Database(path).open()
    engine = Engine(SqliteStore(db), clock=utcnow, thresholds=Thresholds())
    await engine.start()
    try:
        await engine.upsert(onts)
    finally:
        await engine.stop()
        await db.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["agents", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def stored(db: Path) -> list[tuple[str, str, str, str, str | None]]:
    """The agents table as it is on disk."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, token_hash, areas, prefixes, revoked_at FROM agents ORDER BY name"
        ).fetchall()


def token_of(out: str) -> str:
    """The token line of an add/token answer (indented, alone)."""
    (line,) = [line for line in out.splitlines() if line.startswith("  ")]
    return line.strip()


def table(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ONTS", "LAST", "CONTACT", "SWEEP", "QUEUE", "STATE",
                                "AREAS/PREFIXES"]  # fmt: skip
    return {line.split()[0]: line.split() for line in lines[1:-1]}


def holder(db: Path, token: str) -> str | None:
    async def go() -> str | None:
        database = await Database(db).open()
        try:
            row = await Agents(database).by_token(token)
        finally:
            await database.close()
        return row.config.name if row else None

    return asyncio.run(go())


def test_add_prints_the_token_once_and_list_shows_the_agent(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "add", "POP-2", "--area", "Baciro", "--prefix", "127.0.9.7/24")
    assert code == 0, err
    token = token_of(out)
    assert out.count(token) == 1 and "ONTWATCH_AGENT_TOKEN_FILE" in out and token not in err
    assert "areas Baciro; prefixes 127.0.9.0/24" in out
    assert holder(env, token) == "POP-2"
    ((name, hashed, _, _, _),) = stored(env)
    assert name == "POP-2" and hashed == token_hash(token)
    code, out, _ = run(capsys)
    assert code == 0
    rows = table(out)
    assert rows["POP-2"][:6] == ["POP-2", "4", "never", "-", "0", "waiting"]
    assert out.splitlines()[-1] == f"1 agents, from the database {env}: the service is not running"
    assert token not in out


def test_set_replaces_the_assignment(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "add", "POP-2", "--area", "Baciro", "--area", "Bumijo")[0] == 0
    assert table(run(capsys, "list")[1])["POP-2"][1] == "4"
    code, out, _ = run(capsys, "set", "POP-2", "--prefix", "127.0.1.0/30")
    assert code == 0 and "agent POP-2: areas none; prefixes 127.0.1.0/30" in out
    assert table(run(capsys, "list")[1])["POP-2"][1] == "3"  # 127.0.1.1-3
    assert stored(env)[0][2:4] == ("[]", '["127.0.1.0/30"]')


def test_token_rotates_and_revoke_ends_it(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = token_of(run(capsys, "add", "POP-2", "--area", "Baciro")[1])
    code, out, _ = run(capsys, "token", "POP-2")
    second = token_of(out)
    assert code == 0 and second != first and "the old one no longer works" in out
    assert holder(env, first) is None and holder(env, second) == "POP-2"
    code, out, _ = run(capsys, "revoke", "POP-2")
    assert code == 0 and out.startswith("agent POP-2 revoked")
    assert holder(env, second) is None
    rows = table(run(capsys)[1])
    assert rows["POP-2"][1:2] == ["0"] and "revoked" in rows["POP-2"]  # its ONTs: the centre's
    code, out, _ = run(capsys, "token", "POP-2")
    assert code == 0 and "reinstated" in out and holder(env, token_of(out)) == "POP-2"
    assert run(capsys, "remove", "POP-2")[:2] == (0, "agent POP-2 removed\n")
    assert stored(env) == []


def test_token_file_is_new_and_private(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pop2.token"
    code, out, _ = run(capsys, "add", "POP-2", "--area", "Baciro", "--token-file", str(path))
    token = path.read_text(encoding="utf-8").strip()
    assert code == 0 and token not in out and path.stat().st_mode & 0o777 == 0o600
    assert holder(env, token) == "POP-2"
    code, _, err = run(capsys, "token", "POP-2", "--token-file", str(path))  # exists: refused
    assert code == 2 and "token file" in err
    assert holder(env, token) == "POP-2"  # nothing changed: the old token still works
    missing = tmp_path / "no" / "such" / "t"
    code, _, err = run(capsys, "add", "POP-3", "--area", "x", "--token-file", str(missing))
    assert code == 2 and "token file" in err and [r[0] for r in stored(env)] == ["POP-2"]


REFUSALS = [
    (("add", "a b", "--area", "Baciro"), "agent name"),
    (("add", "POP-9", "--prefix", "10.2.0.0/33"), "prefix"),
    (("add", "POP-9", "--prefix", "Baciro"), "prefix"),
    (("add", "POP-9", "--area", " "), "area"),
    (("add", "POP-9"), "area/prefix"),
    (("add", "pop-2", "--area", "Bumijo"), "exists"),
    (("set", "POP-2"), "area/prefix"),
    (("set", "POP-2", "--area", "Bumijo", "--prefix", "x"), "prefix"),
    (("set", "POP-7", "--area", "Bumijo"), "no agent"),
    (("token", "POP-7"), "no agent"),
    (("revoke", "POP-7"), "no agent"),
    (("remove", "POP-7"), "no agent"),
    (("revoke", "../x"), "agent name"),
]


@pytest.mark.parametrize(("args", "field"), REFUSALS)
def test_bad_input_exits_2_naming_the_field(
    env: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], field: str
) -> None:
    assert run(capsys, "add", "POP-2", "--area", "Baciro")[0] == 0
    before = stored(env)
    code, out, err = run(capsys, *args)
    assert code == 2 and field in err and err.count("\n") == 1 and out == ""
    assert stored(env) == before


def test_json_for_machines(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(run(capsys, "--json")[1]) == []
    run(capsys, "add", "POP-2", "--area", "Baciro")
    run(capsys, "add", "POP-1", "--prefix", "127.0.9.0/24")
    run(capsys, "revoke", "POP-1")
    records = json.loads(run(capsys, "--json")[1])
    assert json.loads(run(capsys, "list", "--json")[1]) == records
    assert [(r["name"], r["state"], r["onts"], r["revoked"]) for r in records] == [
        ("POP-1", "revoked", 0, True),
        ("POP-2", "waiting", 3, False),
    ]
    assert records[1]["areas"] == ["Baciro"] and records[1]["last_contact"] is None


def test_as_a_real_process(tmp_path: Path) -> None:
    environment = service_env(tmp_path / "p.db", free_port())
    added = cli("agents", "add", "POP-2", "--area", "Baciro", env=environment)
    assert added.returncode == 0, added.stderr
    listed = cli("agents", env=environment)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[0] == "POP-2"
    bad = cli("agents", "add", "POP 3", "--area", "x", env=environment)
    assert bad.returncode == 2 and bad.stderr.startswith("ontwatch: agent name")
    unknown = cli("agents", "frobnicate", env=environment)
    assert unknown.returncode == 2  # argparse: an unknown action


def test_list_shows_what_the_desk_last_saved(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Service down: the last contact and lost since the desk saved, in the service's zone."""
    run(capsys, "add", "POP-2", "--area", "Baciro")
    run(capsys, "add", "POP-3", "--area", "Bumijo")
    now = utcnow().replace(microsecond=0)
    lost_at = now - timedelta(minutes=50)

    async def save() -> None:
        db = await Database(env).open()
        try:
            await Agents(db).save_contacts(
                [
                    ContactRow("POP-2", now - timedelta(hours=1), lost_at, "e", 9, 5.0),
                    ContactRow("POP-3", now - timedelta(seconds=30), None, "f", 3, 5.0),
                ]
            )
        finally:
            await db.close()

    asyncio.run(save())
    lines = {line.split()[0]: line for line in run(capsys)[1].splitlines()[1:-1]}
    local = lost_at.astimezone(ZoneInfo("Asia/Jakarta")).strftime("%Y-%m-%d %H:%M")
    assert "1 h 0 min ago" in lines["POP-2"] and f"lost since {local}" in lines["POP-2"]
    assert re.search(r"\b3[0-2] s ago\b", lines["POP-3"]) and " ok " in lines["POP-3"]
    records = {r["name"]: r for r in json.loads(run(capsys, "--json")[1])}
    assert records["POP-2"]["lost"] and records["POP-2"]["state"] == "lost"
    assert records["POP-3"]["interval"] == 5.0 and records["POP-3"]["lost_since"] is None
