"""Database schema as a list of versioned migrations (PRAGMA user_version)."""

from __future__ import annotations

import aiosqlite

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
]


async def migrate(conn: aiosqlite.Connection) -> int:
    """Bring the database up to the newest schema; returns the version."""
    (version,) = await (await conn.execute("PRAGMA user_version")).fetchone()  # type: ignore[misc]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first; the version bump rides in the same script.
        await conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
