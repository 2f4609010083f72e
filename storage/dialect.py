"""The few places where SQLite and PostgreSQL SQL differ, and telling the two targets apart.

Storage SQL is written once, with `?` parameters and the syntax both databases share
(`INSERT … ON CONFLICT … DO UPDATE`, `RETURNING`, row-value comparisons); what cannot be
shared is asked of this module by the database's `kind` ("sqlite" or "postgresql").
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_URL_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Whether ONTWATCH_DB names a PostgreSQL database (anything else is a SQLite path)."""
    return isinstance(target, str) and target.strip().lower().startswith(_URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for logs and messages.

    A password may also ride in the query (`?password=…`); that is masked too.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` parameters to psycopg's `%s`, literal `%` doubled; quoted text left alone.

    Cached per statement text: the engine's group commit repeats the same few statements.
    """
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


def all_digits(column: str, kind: str) -> str:
    """A condition true when the text column holds only ASCII digits (or is empty)."""
    if kind == POSTGRESQL:
        return f"{column} ~ '^[0-9]*$'"
    return f"{column} NOT GLOB '*[^0-9]*'"


def nocase_eq(column: str, kind: str) -> str:
    """`column = ?` ignoring ASCII case: SQLite's COLLATE NOCASE column does it (and keeps
    its index); PostgreSQL compares lower() on both sides (its unique index is on lower())."""
    if kind == POSTGRESQL:
        return f"lower({column}) = lower(?)"
    return f"{column} = ?"


def nocase_order(column: str, kind: str) -> str:
    """An ORDER BY term sorting as SQLite's NOCASE does (ASCII case folded, then bytes)."""
    if kind == POSTGRESQL:
        return f"lower({column})"
    return column


def begin_snapshot(kind: str) -> str:
    """BEGIN for a group of reads that must see one state (no commit in between)."""
    if kind == POSTGRESQL:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    return "BEGIN"  # SQLite: a deferred transaction reads one WAL snapshot
