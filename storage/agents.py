"""Probe agents as configured centrally: names, token hashes, assignments, last contact.

An agent's token is `secrets.token_urlsafe(32)` (256 random bits) shown once by
`ontwatch agents add`; the table keeps only its SHA-256. A fast hash is right here, unlike
the users' scrypt: a password can be guessed from a dictionary, a 256-bit random token
cannot, so a copy of the database still hands out no agent's token. The desk
(monitor.agents.AgentDesk) reads the rows at start and on reload, looks tokens up, and writes
every agent's contact figures back in one cheap transaction every few seconds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from monitor.agents import AgentConfig
from storage.codec import parse_ts, ts
from storage.database import Database
from storage.dialect import nocase_eq, nocase_order

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_AREA = 200
MAX_ITEMS = 1000  # areas or prefixes of one agent: more is a mistake, not a POP
_COLUMNS = (
    "name, areas, prefixes, created_at, revoked_at, last_contact, lost_since, epoch, "
    "last_seq, interval"
)


class AgentError(ValueError):
    """A bad agent name, area or prefix, a duplicate name, or an unknown agent."""


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent as stored: its configuration and what the desk last saved of its contact."""

    config: AgentConfig
    created_at: datetime
    revoked_at: datetime | None = None
    last_contact: datetime | None = None
    lost_since: datetime | None = None
    epoch: str | None = None
    last_seq: int | None = None
    interval: float | None = None


@dataclass(frozen=True, slots=True)
class ContactRow:
    """The contact figures of one agent that survive a restart of the centre."""

    name: str
    last_contact: datetime | None
    lost_since: datetime | None
    epoch: str | None
    last_seq: int | None
    interval: float | None


class Contact(Protocol):
    """Anything with ContactRow's fields (the desk may pass its own record type)."""

    @property
    def name(self) -> str: ...
    @property
    def last_contact(self) -> datetime | None: ...
    @property
    def lost_since(self) -> datetime | None: ...
    @property
    def epoch(self) -> str | None: ...
    @property
    def last_seq(self) -> int | None: ...
    @property
    def interval(self) -> float | None: ...


# -- validation --------------------------------------------------------------------------


def check_name(name: str) -> str:
    """A valid agent name: 1-64 letters, digits and . _ -, starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise AgentError(
            "agent name: 1 to 64 characters of letters, digits and . _ -, "
            "starting with a letter or digit"
        )
    return name


def check_areas(areas: Iterable[str]) -> tuple[str, ...]:
    """Area names stripped, non-empty, without duplicates, in the order given."""
    out: list[str] = []
    for raw in areas:
        area = raw.strip() if isinstance(raw, str) else ""
        if not area:
            raise AgentError("area: an empty area name")
        if len(area) > MAX_AREA or not area.isprintable():
            raise AgentError(f"area: at most {MAX_AREA} printable characters")
        if area not in out:
            out.append(area)
    if len(out) > MAX_ITEMS:
        raise AgentError(f"area: at most {MAX_ITEMS} areas")
    return tuple(out)


def check_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """CIDR prefixes normalised (10.2.0.5/16 -> 10.2.0.0/16), without duplicates."""
    out: list[str] = []
    for raw in prefixes:
        text = raw.strip() if isinstance(raw, str) else ""
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise AgentError(
                f"prefix: {text[:60]!r} is not an IP prefix such as 10.2.0.0/16"
            ) from None
        if str(network) not in out:
            out.append(str(network))
    if len(out) > MAX_ITEMS:
        raise AgentError(f"prefix: at most {MAX_ITEMS} prefixes")
    return tuple(out)


def token_hash(token: str) -> str:
    """What the table keeps of an agent's token."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def new_token() -> str:
    """A fresh agent token (URL-safe text, 256 random bits)."""
    return secrets.token_urlsafe(32)


# -- the table ---------------------------------------------------------------------------


class Agents:
    """The agents table (migration 7)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Names are case-insensitive (SQLite: COLLATE NOCASE; PostgreSQL: lower()).
        self._eq = nocase_eq("name", db.kind)
        self._order = nocase_order("name", db.kind)

    async def add(
        self, name: str, areas: Iterable[str], prefixes: Iterable[str], now: datetime
    ) -> str:
        """Create an agent; returns its token (shown once). AgentError names the bad field."""
        check_name(name)
        areas_t, prefixes_t = check_areas(areas), check_prefixes(prefixes)
        token = new_token()
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO agents (name, token_hash, areas, prefixes, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, token_hash(token), _json(areas_t), _json(prefixes_t), ts(now)),
                )
        except self.db.integrity_errors:
            raise AgentError(f"agent name: {name!r} exists") from None
        return token

    async def set_assignment(
        self, name: str, areas: Iterable[str], prefixes: Iterable[str]
    ) -> AgentRow:
        """Replace an agent's areas and prefixes (all or nothing); the updated row."""
        areas_t, prefixes_t = check_areas(areas), check_prefixes(prefixes)
        await self._update(name, "areas = ?, prefixes = ?", (_json(areas_t), _json(prefixes_t)))
        return await self._must_get(name)

    async def new_token(self, name: str) -> str:
        """A new token for an agent (the old one stops working); reinstates a revoked agent."""
        token = new_token()
        await self._update(name, "token_hash = ?, revoked_at = NULL", (token_hash(token),))
        return token

    async def revoke(self, name: str, now: datetime) -> AgentRow:
        """The agent's token stops working and its ONTs go back to the centre."""
        await self._update(name, "revoked_at = COALESCE(revoked_at, ?)", (ts(now),))
        return await self._must_get(name)

    async def remove(self, name: str) -> bool:
        """Delete an agent; False when there is none of that name."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(f"DELETE FROM agents WHERE {self._eq}", (name,))
            return cur.rowcount > 0

    async def all(self) -> list[AgentRow]:
        """Every agent (revoked ones too), by name."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM agents ORDER BY {self._order}")
        return [_row(r) for r in rows]

    async def get(self, name: str) -> AgentRow | None:
        """One agent by name (case-insensitive, like the uniqueness of names)."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM agents WHERE {self._eq}", (name,))
        return _row(rows[0]) if rows else None

    async def by_token(self, token: str) -> AgentRow | None:
        """The agent holding this token, unless revoked; None for any other text."""
        if not isinstance(token, str) or not token:
            return None
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM agents WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash(token),),
        )
        return _row(rows[0]) if rows else None

    async def save_contacts(self, rows: Sequence[Contact]) -> int:
        """Write many agents' contact figures in one transaction; how many agents matched.

        Called by the desk every few seconds: one statement prepared once, one commit.
        """
        if not rows:
            return 0
        values = [
            (
                ts(r.last_contact),
                ts(r.lost_since),
                r.epoch,
                r.last_seq,
                r.interval,
                r.name,
            )
            for r in rows
        ]
        async with self.db.transaction() as conn:
            cur = await conn.executemany(
                "UPDATE agents SET last_contact = ?, lost_since = ?, epoch = ?, last_seq = ?, "
                f"interval = ? WHERE {self._eq}",
                values,
            )
            return cur.rowcount

    async def _update(self, name: str, assignments: str, params: Sequence[Any]) -> None:
        check_name(name)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE agents SET {assignments} WHERE {self._eq}", (*params, name)
            )
            if cur.rowcount == 0:
                raise AgentError(f"agent name: no agent {name!r} (ontwatch agents lists them)")

    async def _must_get(self, name: str) -> AgentRow:
        row = await self.get(name)
        if row is None:  # removed between the update and this read
            raise AgentError(f"agent name: no agent {name!r}")
        return row


def _json(items: Sequence[str]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


def _row(r: Sequence[Any]) -> AgentRow:
    created = parse_ts(r[3])
    assert created is not None
    revoked = parse_ts(r[4])
    config = AgentConfig(
        name=str(r[0]),
        areas=tuple(json.loads(r[1])),
        prefixes=tuple(json.loads(r[2])),
        revoked=revoked is not None,
    )
    return AgentRow(
        config=config,
        created_at=created,
        revoked_at=revoked,
        last_contact=parse_ts(r[5]),
        lost_since=parse_ts(r[6]),
        epoch=r[7],
        last_seq=None if r[8] is None else int(r[8]),
        interval=None if r[9] is None else float(r[9]),
    )
