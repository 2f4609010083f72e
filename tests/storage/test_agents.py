"""Probe agents on a real SQLite file: add, assignment, tokens, revocation, contacts, upgrade."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.agents import AgentConfig
from storage.agents import AgentError, Agents, ContactRow, token_hash
from storage.database import Database
from storage.schema import MIGRATIONS
from tests.conftest import ManualClock


@pytest.fixture
def agents(db: Database) -> Agents:
    return Agents(db)


def db_bytes(path: Path) -> bytes:
    """The database file and its WAL, as bytes (where a leaked token would be)."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_add_lists_the_normalised_assignment(agents: Agents, clock: ManualClock) -> None:
    token = await agents.add(
        "POP-2",
        [" Baciro ", "Gondokusuman", "Baciro"],
        ["10.2.0.5/16", "10.2.0.0/16", "fd00::1/64"],
        clock(),
    )
    assert len(token) >= 43  # token_urlsafe(32): 256 bits
    await agents.add("POP-1", [], ["192.168.7.0/24"], clock())
    rows = await agents.all()
    assert [r.config.name for r in rows] == ["POP-1", "POP-2"]
    pop2 = rows[1]
    assert pop2.config == AgentConfig(
        "POP-2", ("Baciro", "Gondokusuman"), ("10.2.0.0/16", "fd00::/64"), revoked=False
    )
    assert pop2.created_at == clock() and pop2.revoked_at is None
    assert (pop2.last_contact, pop2.lost_since, pop2.epoch, pop2.last_seq) == (None,) * 4


@pytest.mark.sqlite_only  # reads the SQLite file's and WAL's bytes
async def test_the_token_is_never_stored(db: Database, agents: Agents, clock: ManualClock) -> None:
    token = await agents.add("POP-2", ["Baciro"], [], clock())
    rotated = await agents.new_token("POP-2")
    stored = await db.fetchall("SELECT token_hash FROM agents")
    assert stored == [(token_hash(rotated),)] and len(stored[0][0]) == 64
    raw = db_bytes(db.path)
    assert token.encode() not in raw and rotated.encode() not in raw


async def test_by_token_rotation_and_revocation(agents: Agents, clock: ManualClock) -> None:
    first = await agents.add("POP-2", ["Baciro"], [], clock())
    other = await agents.add("POP-3", ["Bumijo"], [], clock())
    found = await agents.by_token(first)
    assert found is not None and found.config.name == "POP-2"
    assert await agents.by_token(first + "x") is None
    assert await agents.by_token("") is None
    second = await agents.new_token("POP-2")
    assert second != first
    assert await agents.by_token(first) is None  # the old token stops working
    assert (await agents.by_token(second)).config.name == "POP-2"  # type: ignore[union-attr]
    clock.advance(minutes=5)
    revoked = await agents.revoke("POP-2", clock())
    assert revoked.config.revoked and revoked.revoked_at == clock()
    assert await agents.by_token(second) is None
    assert (await agents.by_token(other)).config.name == "POP-3"  # type: ignore[union-attr]
    clock.advance(minutes=5)
    again = await agents.revoke("POP-2", clock())  # revoking twice keeps the first time
    assert again.revoked_at == clock() - timedelta(minutes=5)
    third = await agents.new_token("POP-2")  # a new token reinstates the agent
    assert (await agents.by_token(third)).config.revoked is False  # type: ignore[union-attr]


async def test_set_assignment_replaces_it(agents: Agents, clock: ManualClock) -> None:
    await agents.add("POP-2", ["Baciro", "Bumijo"], ["10.2.0.0/16"], clock())
    row = await agents.set_assignment("POP-2", ["Kotabaru"], [])
    assert (row.config.areas, row.config.prefixes) == (("Kotabaru",), ())
    assert (await agents.get("pop-2")).config.areas == ("Kotabaru",)  # type: ignore[union-attr]


BAD = [
    ("add", ("a b", [], []), "agent name"),
    ("add", ("", [], []), "agent name"),
    ("add", ("-x", [], []), "agent name"),
    ("add", ("x" * 65, [], []), "agent name"),
    ("add", ("POP-9", ["  "], []), "area"),
    ("add", ("POP-9", ["x" * 201], []), "area"),
    ("add", ("POP-9", [], ["10.2.0.0/33"]), "prefix"),
    ("add", ("POP-9", [], ["baciro"]), "prefix"),
    ("add", ("POP-9", [], [""]), "prefix"),
    ("add", ("pop-2", [], []), "exists"),
    ("set", ("POP-2", [], ["10.0.0.0/8", "nope"]), "prefix"),
    ("set", ("nobody", [], []), "no agent"),
    ("set", ("bad name", [], []), "agent name"),
]


@pytest.mark.parametrize(("action", "args", "field"), BAD)
async def test_bad_input_names_the_field_and_changes_nothing(
    agents: Agents, clock: ManualClock, action: str, args: tuple, field: str
) -> None:
    await agents.add("POP-2", ["Baciro"], ["10.2.0.0/16"], clock())
    before = await agents.all()
    with pytest.raises(AgentError, match=field):
        if action == "add":
            await agents.add(*args, clock())
        else:
            await agents.set_assignment(*args)
    assert await agents.all() == before


async def test_unknown_agents_are_refused(agents: Agents, clock: ManualClock) -> None:
    with pytest.raises(AgentError, match="no agent"):
        await agents.new_token("POP-7")
    with pytest.raises(AgentError, match="no agent"):
        await agents.revoke("POP-7", clock())
    assert await agents.remove("POP-7") is False


async def test_save_contacts_writes_many_in_one_go(agents: Agents, clock: ManualClock) -> None:
    for n in range(1, 4):
        await agents.add(f"POP-{n}", [f"area{n}"], [], clock())
    t = clock()
    written = await agents.save_contacts(
        [
            ContactRow("POP-1", t, None, "9b1c", 1234, 5.0),
            ContactRow("POP-3", t - timedelta(minutes=1), t, "aa", 7, 10.0),
            ContactRow("POP-8", t, None, "zz", 1, 5.0),  # removed meanwhile: skipped
        ]
    )
    assert written == 2
    rows = {r.config.name: r for r in await agents.all()}
    one, three = rows["POP-1"], rows["POP-3"]
    assert (one.last_contact, one.lost_since, one.epoch, one.last_seq, one.interval) == (
        t,
        None,
        "9b1c",
        1234,
        5.0,
    )
    assert (three.lost_since, three.last_seq, three.interval) == (t, 7, 10.0)
    assert rows["POP-2"].last_contact is None
    assert await agents.save_contacts([]) == 0


async def test_remove(agents: Agents, clock: ManualClock) -> None:
    token = await agents.add("POP-2", ["Baciro"], [], clock())
    assert await agents.remove("POP-2") is True
    assert await agents.all() == [] and await agents.by_token(token) is None


async def test_a_database_of_version_6_is_upgraded(tmp_path: Path, clock: ManualClock) -> None:
    """A database of the release before agents gains the table and keeps its data."""
    number = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE agents" in m)
    assert number == 6
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for n, script in enumerate(MIGRATIONS[:number], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {n};\nCOMMIT;")
    conn.execute("INSERT INTO onts (id, name, updated_at) VALUES ('7', 'Baciro', '2026-01-01')")
    conn.execute(
        "INSERT INTO users (name, role, password, created_at) "
        "VALUES ('ayu', 'admin', 'x', '2026-01-01')"
    )
    conn.commit()
    conn.close()
    db = await Database(path).open()
    try:
        assert await db.fetchall("SELECT id, name FROM onts") == [("7", "Baciro")]
        assert await db.fetchall("SELECT name FROM users") == [("ayu",)]
        assert await db.fetchall("PRAGMA user_version") == [(len(MIGRATIONS),)]
        token = await Agents(db).add("POP-2", ["Baciro"], [], clock())
        assert (await Agents(db).by_token(token)) is not None
    finally:
        await db.close()
