"""Online backups with SQLite's backup API, checked, rotated; and restoring one.

A copy that fails `PRAGMA integrity_check` is never put in rotation: it is moved to
`<backup dir>/failed/` with a `.txt` note of what the check said, `backup()` raises
BackupFailed, and `last_failure()` reports it (to /healthz) until a good backup is newer.
Rotation only ever counts and deletes good backups, so a run of bad ones cannot push the
last good one out.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.dialect import mask_url

PREFIX = "ontwatch-"
SUFFIX = ".db"
FAILED_DIR = "failed"
FAILED_KEEP = 3  # bad copies kept for inspection (each as large as the database)
_STAMP = "%Y%m%dT%H%M%S%fZ"


class BackupFailed(RuntimeError):
    """The copy failed its integrity check; it was kept aside, not put in rotation."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"backup {path} failed its integrity check: {'; '.join(problems[:3])}")
        self.path = path
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Failure:
    """The newest failed backup, when it is newer than every good one."""

    path: Path
    at: datetime
    problems: str


def use_pg_dump(url: str, *, restore: bool = False) -> str:
    """What `ontwatch backup` (or restore) says on PostgreSQL: the operator's tools do it.

    The database is named with its password masked; pg_dump takes the URL as --dbname.
    """
    name = mask_url(url)
    if restore:
        return (
            f"the database is PostgreSQL ({name}): restore a pg_dump archive with pg_restore, "
            f"e.g. pg_restore --clean --if-exists --dbname '{name}' ontwatch.dump "
            "(service stopped; ontwatch restore handles SQLite files only)"
        )
    return (
        f"the database is PostgreSQL ({name}): back it up with pg_dump, e.g. "
        f"pg_dump --format=custom --file ontwatch.dump --dbname '{name}' "
        "(with the real password, or PGPASSWORD / ~/.pgpass); ontwatch backup copies SQLite "
        "files only"
    )


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` says is wrong with a database file ([] when ok)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def backup(db_path: Path, backup_dir: Path, keep: int, now: datetime | None = None) -> Path:
    """Copy the live database into backup_dir (consistent, while in use), check it, rotate.

    Raises BackupFailed (after keeping the copy aside) when the copy is not intact.
    """
    if not db_path.exists():
        raise FileNotFoundError(f"database {db_path} does not exist")
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(_STAMP)
    target = backup_dir / f"{PREFIX}{stamp}{SUFFIX}"
    partial = target.with_suffix(".partial")
    try:
        _copy(db_path, partial)
    except sqlite3.DatabaseError as exc:
        _set_aside(partial, backup_dir, target.name, [f"copy failed: {exc}"])
    problems = integrity_problems(partial)
    if problems:
        _set_aside(partial, backup_dir, target.name, problems)
    partial.replace(target)  # a backup file is either whole or absent
    rotate(backup_dir, keep)
    return target


def _copy(db_path: Path, partial: Path) -> None:
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=1024)  # in steps, so the service's writer is not held up long
        finally:
            dst.close()
    finally:
        src.close()


def _set_aside(partial: Path, backup_dir: Path, name: str, problems: list[str]) -> None:
    """Move a bad copy to failed/ with a note; raise BackupFailed."""
    failed = backup_dir / FAILED_DIR
    failed.mkdir(exist_ok=True)
    path = failed / name
    if partial.exists():
        partial.replace(path)
    else:
        path.touch()
    path.with_suffix(".txt").write_text("\n".join(problems) + "\n", encoding="utf-8")
    for old in sorted(failed.glob(f"{PREFIX}*{SUFFIX}"))[:-FAILED_KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".txt").unlink(missing_ok=True)
    raise BackupFailed(path, problems)


def rotate(backup_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` good backups (failed/ is not counted); what was deleted."""
    files = good_backups(backup_dir)
    doomed = files[: max(0, len(files) - max(1, keep))]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def good_backups(backup_dir: Path) -> list[Path]:
    """The backups in rotation, oldest first."""
    return sorted(backup_dir.glob(f"{PREFIX}*{SUFFIX}"))


def _stamp_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.stem[len(PREFIX) :], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def last_failure(backup_dir: Path) -> Failure | None:
    """The newest failed backup if no good backup was written after it."""
    failed = sorted((backup_dir / FAILED_DIR).glob(f"{PREFIX}*{SUFFIX}"))
    if not failed:
        return None
    good = good_backups(backup_dir)
    if good and good[-1].name > failed[-1].name:
        return None
    note = failed[-1].with_suffix(".txt")
    problems = note.read_text(encoding="utf-8").strip() if note.exists() else ""
    at = _stamp_of(failed[-1]) or datetime.fromtimestamp(failed[-1].stat().st_mtime, UTC)
    return Failure(failed[-1], at, problems.splitlines()[0] if problems else "")


def restore(backup_file: Path, db_path: Path) -> Path | None:
    """Replace the database with a checked backup (the service must be stopped).

    The current database (if any) is kept as `<db>.before-restore-<stamp>`; its WAL and
    shared-memory files are moved with it, so SQLite cannot replay them onto the restored
    file. Returns the path of the kept copy. Raises BackupFailed if the backup is not intact.
    """
    problems = integrity_problems(backup_file)
    if problems:
        raise BackupFailed(backup_file, problems)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    kept: Path | None = None
    if db_path.exists():
        stamp = datetime.now(UTC).strftime(_STAMP)
        kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
        db_path.replace(kept)
    for extra in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + extra)
        if side.exists():
            if kept is not None:
                side.replace(kept.with_name(kept.name + extra))
            else:
                side.unlink()
    partial = db_path.with_name(db_path.name + ".restoring")
    shutil.copyfile(backup_file, partial)
    partial.replace(db_path)
    return kept
