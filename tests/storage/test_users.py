"""Users and sessions on a real SQLite file: hashing, expiry, disabling, removal, upgrade."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from storage.database import Database
from storage.schema import MIGRATIONS
from storage.users import (
    SessionPolicy,
    UserError,
    Users,
    check_password,
    count_admins,
    hash_password,
    session_hash,
)
from tests.conftest import ManualClock

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
PASSWORD = "correct horse battery"


@pytest.fixture
def users(db: Database) -> Users:
    return Users(db)


def test_hash_is_salted_and_carries_its_parameters() -> None:
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b  # fresh salt each time
    assert a.startswith("scrypt$16384$8$1$") and PASSWORD not in a
    assert check_password(PASSWORD, a) and check_password(PASSWORD, b)
    assert not check_password(PASSWORD + "x", a)
    cheap = hash_password(PASSWORD, n=2**10)  # parameters read back from the stored hash
    assert cheap.startswith("scrypt$1024$") and check_password(PASSWORD, cheap)
    for broken in ("", "scrypt$1$2", "md5$1$1$1$AA$AA", "scrypt$x$8$1$AA$AA"):
        assert not check_password(PASSWORD, broken)


async def test_add_list_and_refusals(users: Users, clock: ManualClock, db: Database) -> None:
    admin = await users.add("ayu", "admin", PASSWORD, clock())
    await users.add("budi.s", "viewer", PASSWORD, clock())
    assert [(u.name, u.role, u.disabled) for u in await users.all()] == [
        ("ayu", "admin", False),
        ("budi.s", "viewer", False),
    ]
    assert admin.created_at == clock()
    rows = await db.fetchall("SELECT password FROM users")
    assert all(PASSWORD not in r[0] for r in rows)
    bad = [
        ("AYU", "viewer", PASSWORD, "exists"),  # names are unique without regard to case
        ("", "viewer", PASSWORD, "user name"),
        ("a b", "viewer", PASSWORD, "user name"),
        ("x\nINFO fake", "viewer", PASSWORD, "user name"),
        ("cici", "root", PASSWORD, "role"),
        ("cici", "viewer", "short", "password"),
    ]
    for name, role, password, field in bad:
        with pytest.raises(UserError, match=field):
            await users.add(name, role, password, clock())
    assert len(await users.all()) == 2


async def test_authenticate(users: Users, clock: ManualClock) -> None:
    await users.add("ayu", "operator", PASSWORD, clock())
    user = await users.authenticate("ayu", PASSWORD)
    assert user is not None and user.role == "operator"
    assert (await users.authenticate("AYU", PASSWORD)) is not None
    assert await users.authenticate("ayu", PASSWORD + "!") is None
    assert await users.authenticate("nobody", PASSWORD) is None
    await users.set_disabled("ayu")
    assert await users.authenticate("ayu", PASSWORD) is None


async def test_unknown_user_costs_a_hash_like_a_wrong_password(
    users: Users, clock: ManualClock
) -> None:
    await users.add("ayu", "viewer", PASSWORD, clock())
    await users.authenticate("warmup", "x")  # the dummy hash is made once

    async def timed(name: str) -> float:
        t0 = time.perf_counter()
        assert await users.authenticate(name, "wrong password") is None
        return time.perf_counter() - t0

    known = min([await timed("ayu") for _ in range(3)])
    unknown = min([await timed("nobody") for _ in range(3)])
    assert unknown > known / 3 and known > unknown / 3


async def test_session_lifecycle_idle_and_absolute_expiry(
    users: Users, clock: ManualClock, db: Database
) -> None:
    user = await users.add("ayu", "viewer", PASSWORD, clock())
    token = await users.open_session(user, clock())
    stored = await db.fetchall("SELECT id_hash FROM sessions")
    assert stored == [(session_hash(token),)] and token not in stored[0][0]
    assert len(token) >= 43  # 32 random bytes
    # Use within the idle limit keeps it alive, up to the absolute limit.
    for _ in range(16):  # 7 h 44 min
        clock.advance(minutes=29)
        found = await users.session_user(token, clock(), POLICY)
        assert found is not None and found.name == "ayu"
    clock.advance(minutes=29)  # 8 h of activity: past the absolute lifetime
    assert await users.session_user(token, clock(), POLICY) is None
    assert await users.sessions_of("ayu") == 0  # deleted, not only refused

    idle = await users.open_session(user, clock())
    clock.advance(minutes=31)
    assert await users.session_user(idle, clock(), POLICY) is None
    assert await users.session_user("not-a-session", clock(), POLICY) is None


async def test_logout_disable_and_remove_end_sessions(users: Users, clock: ManualClock) -> None:
    ayu = await users.add("ayu", "admin", PASSWORD, clock())
    budi = await users.add("budi", "viewer", PASSWORD, clock())
    t1, t2 = await users.open_session(ayu, clock()), await users.open_session(ayu, clock())
    t3 = await users.open_session(budi, clock())
    await users.close_session(t1)
    assert await users.session_user(t1, clock(), POLICY) is None
    assert await users.session_user(t2, clock(), POLICY) is not None
    assert await users.set_disabled("ayu") is True
    assert await users.session_user(t2, clock(), POLICY) is None
    assert await users.sessions_of("ayu") == 0
    assert await users.set_disabled("nobody") is False
    assert await users.remove("budi") is True and await users.remove("budi") is False
    assert await users.session_user(t3, clock(), POLICY) is None
    assert [u.name for u in await users.all()] == ["ayu"]


async def test_prune_deletes_only_expired_sessions(users: Users, clock: ManualClock) -> None:
    user = await users.add("ayu", "viewer", PASSWORD, clock())
    old = await users.open_session(user, clock())
    clock.advance(minutes=45)
    fresh = await users.open_session(user, clock())
    assert await users.prune_sessions(clock(), POLICY) == 1
    assert await users.session_user(old, clock(), POLICY) is None
    assert await users.session_user(fresh, clock(), POLICY) is not None


async def test_count_admins_reads_the_file(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "c.db"
    assert count_admins(path) == 0  # no file yet
    db = await Database(path).open()
    try:
        users = Users(db)
        await users.add("v", "viewer", PASSWORD, clock())
        assert count_admins(path) == 0
        await users.add("a", "admin", PASSWORD, clock())
        assert count_admins(path) == 1
        await users.set_disabled("a")
        assert count_admins(path) == 0
    finally:
        await db.close()


async def test_a_database_before_users_is_upgraded(tmp_path: Path, clock: ManualClock) -> None:
    """A database of the release before web users gains the tables and keeps its data."""
    number = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE users" in m)
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for n, script in enumerate(MIGRATIONS[:number], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {n};\nCOMMIT;")
    conn.execute("INSERT INTO onts (id, name, updated_at) VALUES ('7', 'Baciro', '2026-01-01')")
    conn.commit()
    conn.close()
    assert count_admins(path) == 0  # no users table yet: not an error
    db = await Database(path).open()
    try:
        assert await db.fetchall("SELECT id, name FROM onts") == [("7", "Baciro")]
        await Users(db).add("ayu", "admin", PASSWORD, clock())
        assert count_admins(path) == 1
    finally:
        await db.close()
