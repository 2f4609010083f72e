"""Web users and their sessions: scrypt password hashes, session ids stored only as hashes.

A session id is 32 random bytes given to the browser once; the table keeps its SHA-256, so a
copy of the database does not hand out logins. Sessions end after an idle time, after an
absolute lifetime, at logout, and the moment their user is disabled or removed (users are read
on every request, so `ontwatch user disable` works while the service runs).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from storage.codec import parse_ts, ts
from storage.database import Database
from storage.dialect import is_postgres_url, nocase_eq, nocase_order

ROLES = ("viewer", "operator", "admin")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# scrypt cost: 2**14 x 8 x 1 needs 16 MiB and about 50 ms here; stored with each hash, so
# raising it later leaves old hashes readable.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
_USER_COLUMNS = "id, name, role, disabled, created_at"


class UserError(ValueError):
    """A bad user name, role or password, a duplicate name, or an unknown user."""


@dataclass(frozen=True, slots=True)
class User:
    """A web user (never carries the password hash)."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: idle limit, absolute limit, and how often use is recorded."""

    idle: timedelta
    absolute: timedelta
    touch_every: timedelta = timedelta(seconds=60)


# -- passwords ---------------------------------------------------------------------------


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """'scrypt$n$r$p$salt$hash' with a fresh 16-byte salt (base64, no padding)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p, SCRYPT_LEN)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether the password matches a stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = _unb64(digest)
        if scheme != "scrypt":
            return False
        got = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 2**20
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(name: str) -> str:
    """A valid user name: 1-64 of letters, digits and . _ @ -, starting with a letter or digit."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            "user name: 1 to 64 characters of letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    """One of viewer, operator, admin."""
    if role not in ROLES:
        raise UserError(f"role: must be one of {', '.join(ROLES)}")
    return role


def check_new_password(password: str) -> str:
    """At least MIN_PASSWORD characters, at most MAX_PASSWORD."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def session_hash(token: str) -> str:
    """What the sessions table keeps of a session id."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


# -- the tables --------------------------------------------------------------------------


class Users:
    """The users and sessions tables."""

    def __init__(self, db: Database, *, hashing_slots: int = 2) -> None:
        self.db = db
        # Names are case-insensitive (SQLite: COLLATE NOCASE; PostgreSQL: lower()).
        self._eq = nocase_eq("name", db.kind)
        self._eq_u = nocase_eq("u.name", db.kind)
        self._order = nocase_order("name", db.kind)
        # scrypt runs on threads; a bounded number at once, so a login storm cannot take
        # every core from the monitor.
        self._slots = asyncio.Semaphore(hashing_slots)
        self._dummy: str | None = None

    async def add(self, name: str, role: str, password: str, now: datetime) -> User:
        """Create a user; UserError on a bad field or a name that exists (in any case)."""
        check_name(name)
        check_role(role)
        check_new_password(password)
        hashed = await self._hash(password)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)",
                    (name, role, hashed, ts(now)),
                )
        except self.db.integrity_errors:
            raise UserError(f"user name: {name!r} exists") from None
        user = await self.get(name)
        assert user is not None
        return user

    async def all(self) -> list[User]:
        """Every user, by name."""
        rows = await self.db.fetchall(f"SELECT {_USER_COLUMNS} FROM users ORDER BY {self._order}")
        return [_user(r) for r in rows]

    async def get(self, name: str) -> User | None:
        """One user by name (case-insensitive)."""
        rows = await self.db.fetchall(
            f"SELECT {_USER_COLUMNS} FROM users WHERE {self._eq}", (name,)
        )
        return _user(rows[0]) if rows else None

    async def set_disabled(self, name: str, disabled: bool = True) -> bool:
        """Disable (ending every session) or enable a user; False when there is no such user."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE users SET disabled = ? WHERE {self._eq}", (int(disabled), name)
            )
            found = cur.rowcount > 0
            if disabled:
                await conn.execute(
                    f"DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE {self._eq})",
                    (name,),
                )
        return found

    async def remove(self, name: str) -> bool:
        """Delete a user and their sessions; False when there is no such user."""
        async with self.db.transaction() as conn:
            await conn.execute(
                f"DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE {self._eq})",
                (name,),
            )
            cur = await conn.execute(f"DELETE FROM users WHERE {self._eq}", (name,))
            return cur.rowcount > 0

    async def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user with this password, else None.

        Unknown names and disabled users cost one scrypt too, against a dummy hash, so the
        answer time does not tell which names exist.
        """
        rows = await self.db.fetchall(
            f"SELECT {_USER_COLUMNS}, password FROM users WHERE {self._eq}", (name,)
        )
        stored = rows[0][5] if rows else await self._dummy_hash()
        ok = await self._check(password[:MAX_PASSWORD], stored)
        if not rows or not ok:
            return None
        user = _user(rows[0])
        return None if user.disabled else user

    async def open_session(self, user: User, now: datetime) -> str:
        """A new session id for the user (returned once; only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) "
                "VALUES (?, ?, ?, ?)",
                (session_hash(token), user.id, ts(now), ts(now)),
            )
        return token

    async def session_user(self, token: str, now: datetime, policy: SessionPolicy) -> User | None:
        """The user of a live session; an expired or disabled one is deleted and gives None."""
        key = session_hash(token)
        rows = await self.db.fetchall(
            f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))}, "
            "s.created_at, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hash = ?",
            (key,),
        )
        if not rows:
            return None
        user = _user(rows[0])
        created, seen = parse_ts(rows[0][5]), parse_ts(rows[0][6])
        assert created is not None and seen is not None
        if user.disabled or now - created > policy.absolute or now - seen > policy.idle:
            await self._delete_session(key)
            return None
        if now - seen >= policy.touch_every:  # at most one write a minute per session
            async with self.db.transaction() as conn:
                await conn.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (ts(now), key)
                )
        return user

    async def close_session(self, token: str) -> None:
        """Logout: the session is deleted server-side."""
        await self._delete_session(session_hash(token))

    async def sessions_of(self, name: str) -> int:
        """How many sessions a user has (for tests and `user list`)."""
        rows = await self.db.fetchall(
            f"SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE {self._eq_u}",
            (name,),
        )
        return int(rows[0][0])

    async def prune_sessions(self, now: datetime, policy: SessionPolicy) -> int:
        """Delete every expired session; returns how many."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM sessions WHERE created_at < ? OR last_seen_at < ?",
                (ts(now - policy.absolute), ts(now - policy.idle)),
            )
            return cur.rowcount

    async def _delete_session(self, key: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))

    async def _hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password)

    async def _check(self, password: str, stored: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(check_password, password, stored)

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self._hash(secrets.token_hex(16))
        return self._dummy


def _user(row: Sequence[Any]) -> User:
    created = parse_ts(row[4])
    assert created is not None
    return User(int(row[0]), str(row[1]), str(row[2]), bool(row[3]), created)


def count_admins(path: Path | str) -> int:
    """Enabled admin users in a database file, read-only (0 when the file or table is absent).

    Synchronous, for the start-up check that runs before anything is opened. A
    postgresql:// URL is asked over a short connection (0 when unreachable or empty).
    """
    if isinstance(path, str):
        return _count_admins_pg(path) if is_postgres_url(path) else count_admins(Path(path))
    if not path.is_file():
        return 0
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
        ).fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _count_admins_pg(url: str) -> int:
    import psycopg  # only when PostgreSQL is configured

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0
