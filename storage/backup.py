"""Online backups with SQLite's backup API, rotated."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "ontwatch-"
SUFFIX = ".db"


def backup(db_path: Path, backup_dir: Path, keep: int, now: datetime | None = None) -> Path:
    """Copy the live database into backup_dir (consistent, while it is in use); keep the newest."""
    if not db_path.exists():
        raise FileNotFoundError(f"database {db_path} does not exist")
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backup_dir / f"{PREFIX}{stamp}{SUFFIX}"
    partial = target.with_suffix(".partial")
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=1024)  # in steps, so the service's writer is not held up long
            dst.execute("PRAGMA integrity_check")
        finally:
            dst.close()
    finally:
        src.close()
    partial.replace(target)  # a backup file is either whole or absent
    rotate(backup_dir, keep)
    return target


def rotate(backup_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups; returns what was deleted."""
    files = sorted(backup_dir.glob(f"{PREFIX}*{SUFFIX}"))
    doomed = files[: max(0, len(files) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
