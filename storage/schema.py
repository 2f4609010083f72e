"""Database schema as versioned migrations: SQLite (PRAGMA user_version) and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiosqlite

if TYPE_CHECKING:
    import psycopg

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE onts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        customer_id TEXT NOT NULL DEFAULT '',
        location TEXT NOT NULL DEFAULT '',
        lat REAL,
        lon REAL,
        ip TEXT NOT NULL DEFAULT '',
        area TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    CREATE INDEX onts_area ON onts(area);
    CREATE TABLE ont_state (
        ont_id TEXT PRIMARY KEY REFERENCES onts(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'UNKNOWN',
        rto_count INTEGER NOT NULL DEFAULT 0,
        status_since TEXT,
        last_seen TEXT,
        last_on TEXT,
        severity TEXT NOT NULL DEFAULT 'ok',
        incident TEXT,
        flapping INTEGER NOT NULL DEFAULT 0,
        transitions TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        ont_id TEXT NOT NULL,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        rto_count INTEGER NOT NULL,
        severity TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX history_ont ON history(ont_id, id);
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        ont_id TEXT NOT NULL DEFAULT '',
        area TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL,
        payload TEXT NOT NULL,
        notify INTEGER NOT NULL DEFAULT 1,
        read INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX notifications_unread ON notifications(read, id);
    CREATE INDEX notifications_ont ON notifications(ont_id, id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
        chat_id INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        sent_at TEXT,
        message_id INTEGER
    );
    CREATE INDEX outbox_pending ON outbox(state, chat_id, id);
    CREATE TABLE mutes (
        target TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        by TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE chat_prefs (
        chat_id INTEGER PRIMARY KEY,
        lang TEXT
    );
    CREATE TABLE subscriptions (
        chat_id INTEGER NOT NULL,
        area TEXT NOT NULL,
        min_severity TEXT NOT NULL DEFAULT 'warning',
        PRIMARY KEY (chat_id, area)
    );
    """,
    # 2: open mass outages (area incidents), so a restart keeps folding their members
    """
    CREATE TABLE mass_outages (
        area TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        members TEXT NOT NULL
    );
    """,
    # 3: small key/value facts; /healthz proves the database is writable by updating one
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: area incidents remind until acknowledged, like an ONT's critical incident
    """
    ALTER TABLE mass_outages ADD COLUMN last_notified_at TEXT;
    ALTER TABLE mass_outages ADD COLUMN acked_at TEXT;
    ALTER TABLE mass_outages ADD COLUMN acked_by TEXT NOT NULL DEFAULT '';
    """,
    # 5: web users (scrypt password hashes) and their sessions (only a hash of the id is kept)
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        password TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    """,
    # 6: the bot's message ids: incident thread roots per chat, the pinned status message
    """
    CREATE TABLE bot_threads (
        chat_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        opened_at TEXT NOT NULL,
        single INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (chat_id, key)
    );
    CREATE TABLE bot_status_messages (
        chat_id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    """,
    # 7: probe agents (storage/agents.py): only a SHA-256 of each token is kept; areas and
    # prefixes as JSON lists; the desk's contact figures survive a restart of the centre
    """
    CREATE TABLE agents (
        name TEXT PRIMARY KEY COLLATE NOCASE
            CHECK (length(name) BETWEEN 1 AND 64),
        token_hash TEXT NOT NULL UNIQUE,
        areas TEXT NOT NULL DEFAULT '[]',
        prefixes TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_contact TEXT,
        lost_since TEXT,
        epoch TEXT,
        last_seq INTEGER,
        interval REAL
    );
    """,
    # 8: outbox claims under the leader's epoch (docs/postgresql.md): a row is claimed before
    # each send; rows an older epoch claimed and never marked sent are resent after a takeover
    """
    ALTER TABLE outbox ADD COLUMN claimed_epoch INTEGER;
    ALTER TABLE outbox ADD COLUMN claimed_at TEXT;
    """,
]


# -- PostgreSQL ---------------------------------------------------------------------------
# The same versions in PostgreSQL's words: PG_SCHEMA is the schema at PG_BASE_VERSION in one
# script (nothing ever ran the older steps on PostgreSQL); every later migration is added to
# MIGRATIONS (SQLite) and to PG_MIGRATIONS under the same number. The version is the one row
# of schema_version. Differences: INTEGER is BIGINT (Telegram chat ids exceed 32 bits), REAL
# is DOUBLE PRECISION, INTEGER PRIMARY KEY ids are identities, text compares byte-wise
# (COLLATE "C", as SQLite's BINARY, so orders match), and COLLATE NOCASE uniqueness is a
# unique index on lower(name) (lookups compare lower(name) on both databases).
PG_BASE_VERSION = 7
PG_SCHEMA = """
CREATE TABLE onts (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL DEFAULT '',
    customer_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    location TEXT COLLATE "C" NOT NULL DEFAULT '',
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    ip TEXT COLLATE "C" NOT NULL DEFAULT '',
    area TEXT COLLATE "C" NOT NULL DEFAULT '',
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX onts_area ON onts(area);
CREATE TABLE ont_state (
    ont_id TEXT COLLATE "C" PRIMARY KEY REFERENCES onts(id) ON DELETE CASCADE,
    status TEXT COLLATE "C" NOT NULL DEFAULT 'UNKNOWN',
    rto_count BIGINT NOT NULL DEFAULT 0,
    status_since TEXT COLLATE "C",
    last_seen TEXT COLLATE "C",
    last_on TEXT COLLATE "C",
    severity TEXT COLLATE "C" NOT NULL DEFAULT 'ok',
    incident TEXT COLLATE "C",
    flapping BIGINT NOT NULL DEFAULT 0,
    transitions TEXT COLLATE "C" NOT NULL DEFAULT '[]'
);
CREATE TABLE history (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ont_id TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    rto_count BIGINT NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX history_ont ON history(ont_id, id);
CREATE INDEX history_at ON history(at);
CREATE TABLE notifications (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    ont_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    area TEXT COLLATE "C" NOT NULL DEFAULT '',
    message TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    notify BIGINT NOT NULL DEFAULT 1,
    read BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_unread ON notifications(read, id);
CREATE INDEX notifications_ont ON notifications(ont_id, id);
CREATE TABLE outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    notification_id BIGINT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    chat_id BIGINT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C",
    last_error TEXT COLLATE "C" NOT NULL DEFAULT '',
    sent_at TEXT COLLATE "C",
    message_id BIGINT
);
CREATE INDEX outbox_pending ON outbox(state, chat_id, id);
CREATE INDEX outbox_notification ON outbox(notification_id);
CREATE TABLE mutes (
    target TEXT COLLATE "C" PRIMARY KEY,
    until TEXT COLLATE "C" NOT NULL,
    by TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE TABLE chat_prefs (
    chat_id BIGINT PRIMARY KEY,
    lang TEXT COLLATE "C"
);
CREATE TABLE subscriptions (
    chat_id BIGINT NOT NULL,
    area TEXT COLLATE "C" NOT NULL,
    min_severity TEXT COLLATE "C" NOT NULL DEFAULT 'warning',
    PRIMARY KEY (chat_id, area)
);
CREATE TABLE mass_outages (
    area TEXT COLLATE "C" PRIMARY KEY,
    started_at TEXT COLLATE "C" NOT NULL,
    members TEXT COLLATE "C" NOT NULL,
    last_notified_at TEXT COLLATE "C",
    acked_at TEXT COLLATE "C",
    acked_by TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE TABLE meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password TEXT COLLATE "C" NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX users_name ON users(lower(name));
CREATE TABLE sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT COLLATE "C" NOT NULL,
    last_seen_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE bot_threads (
    chat_id BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    message_id BIGINT NOT NULL,
    opened_at TEXT COLLATE "C" NOT NULL,
    single BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (chat_id, key)
);
CREATE TABLE bot_status_messages (
    chat_id BIGINT PRIMARY KEY,
    message_id BIGINT NOT NULL,
    text TEXT COLLATE "C" NOT NULL DEFAULT '',
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE agents (
    name TEXT COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    areas TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    prefixes TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C",
    last_contact TEXT COLLATE "C",
    lost_since TEXT COLLATE "C",
    epoch TEXT COLLATE "C",
    last_seq BIGINT,
    interval DOUBLE PRECISION
);
CREATE UNIQUE INDEX agents_name ON agents(lower(name));
"""

# Migrations after PG_BASE_VERSION, numbered as in MIGRATIONS (8 goes here, then 9, ...).
PG_MIGRATIONS: dict[int, str] = {
    8: """
    ALTER TABLE outbox ADD COLUMN claimed_epoch BIGINT;
    ALTER TABLE outbox ADD COLUMN claimed_at TEXT COLLATE "C";
    """,
}

_PG_MIGRATION_LOCK = 0x6F6E7477  # pg_advisory_xact_lock key: instances starting together wait


def migrate_pg(conn: psycopg.Connection[Any]) -> int:
    """Bring a PostgreSQL database up to the newest schema (an autocommit connection).

    Each step is one transaction under an advisory lock, so two instances starting at the
    same time migrate once; the version row moves in the same transaction as its DDL.
    """
    newest = PG_BASE_VERSION + len(PG_MIGRATIONS)
    if newest != len(MIGRATIONS) or sorted(PG_MIGRATIONS) != list(
        range(PG_BASE_VERSION + 1, newest + 1)
    ):
        raise RuntimeError("storage.schema: PG_MIGRATIONS must mirror MIGRATIONS' numbers")
    while (version := _pg_step(conn)) < newest:
        pass
    return version


def _pg_step(conn: psycopg.Connection[Any]) -> int:
    """Apply the next missing step (if any); the version after it."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute(PG_SCHEMA)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (PG_BASE_VERSION,))
            return PG_BASE_VERSION
        version = int(row[0])
        script = PG_MIGRATIONS.get(version + 1)
        if script is None:
            return version
        conn.execute(script)
        conn.execute("UPDATE schema_version SET version = %s", (version + 1,))
        return version + 1


async def migrate(conn: aiosqlite.Connection) -> int:
    """Bring the database up to the newest schema; returns the version."""
    (version,) = await (await conn.execute("PRAGMA user_version")).fetchone()  # type: ignore[misc]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first; the version bump rides in the same script.
        await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
