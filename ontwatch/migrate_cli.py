"""`ontwatch migrate-db SQLITE_FILE postgresql://…`: move an installation to PostgreSQL.

Copies every table of the SQLite file (read from a snapshot: the file is never changed) into
the PostgreSQL database in one transaction, checks the copy row for row before committing,
and prints each table's count and digest. The target must be empty (a fresh database, or one
with only the schema) unless `--force`, which replaces its data in the same transaction; a
target that a running instance leads is always refused. `--verify` only compares an
existing copy with the file (exit 1 when they differ). The URL's password never appears in
the output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from storage.dialect import is_postgres_url, mask_url
from storage.transfer import (
    CopyMismatch,
    Report,
    TransferError,
    connect_target,
    copy_installation,
    scrub,
    sqlite_snapshot,
    verify_installation,
)

BAD_INPUT = 2


def add_parser(sub: Any) -> None:
    """Register `migrate-db` on the main parser's subparsers."""
    p = sub.add_parser(
        "migrate-db", help="copy a SQLite installation into PostgreSQL, checked row for row"
    )  # description and example: ontwatch.cli.COMMANDS
    p.add_argument("sqlite_file", type=Path, help="the installation's SQLite file")
    p.add_argument("url", help="the target: postgresql://user:password@host:port/database")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--force", action="store_true", help="replace the data a non-empty target holds"
    )
    mode.add_argument(
        "--verify", action="store_true", help="only compare an existing copy with the file"
    )


def run(args: argparse.Namespace) -> int:
    """Copy (or verify); 0 when the copy matches the file, 1 when not or on an error."""
    if not is_postgres_url(args.url):
        print(
            "ontwatch migrate-db: url: must start with postgresql:// or postgres://",
            file=sys.stderr,
        )
        return BAD_INPUT
    shown = mask_url(args.url)
    try:
        report = _transfer(args.sqlite_file, args.url, force=args.force, verify=args.verify)
    except CopyMismatch as exc:
        _print_report(exc.report, sys.stderr)
        print(f"ontwatch migrate-db: {shown}: {exc}", file=sys.stderr)
        return 1
    except TransferError as exc:
        print(f"ontwatch migrate-db: {shown}: {scrub(str(exc), args.url)}", file=sys.stderr)
        return 1
    out = sys.stdout if report.ok else sys.stderr
    _print_report(report, out)
    if not report.ok:
        bad = ", ".join(t.table for t in report.tables if not t.ok)
        print(f"ontwatch migrate-db: {shown} differs from {args.sqlite_file} in: {bad}", file=out)
        return 1
    verb = "matches" if args.verify else "copied to"
    print(
        f"{args.sqlite_file}: {report.rows} rows in {len(report.tables)} tables {verb} {shown}; checked row for row"
    )
    return 0


def _transfer(path: Path, url: str, *, force: bool, verify: bool) -> Report:
    with sqlite_snapshot(path) as source:
        conn = connect_target(url)
        try:
            if verify:
                return verify_installation(source, conn)
            return copy_installation(source, conn, replace=force)
        except TransferError:
            raise
        except Exception as exc:  # psycopg.Error and the like: one clear line, password-free
            raise TransferError(f"{type(exc).__name__}: {scrub(str(exc), url)}") from None
        finally:
            conn.close()


def _print_report(report: Report, out: Any) -> None:
    """One line per table: rows on each side, digest, and where it first differs."""
    for t in report.tables:
        state = "ok" if t.ok else "DIFFERS"
        line = f"{t.table:<20} {t.source_rows:>9} rows  sha256 {t.source_digest[:16]}  {state}"
        if not t.ok:
            line += (
                f" (target: {t.target_rows} rows, sha256 {t.target_digest[:16]}"
                f"; first differing key {t.first_difference!r})"
            )
        print(line, file=out)
