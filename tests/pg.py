"""A real PostgreSQL server for the tests, started and stopped by the test session itself.

Why not a system cluster: the tests must run the same on a developer's machine and on a fresh
CI machine, never touch a database someone uses, and leave nothing behind. So the session
runs `initdb` into a temporary directory and `pg_ctl start` on a free loopback port, with
fsync on (the durability the engine's group commit promises is then the real thing).
PostgreSQL refuses to run as root, so as root the server runs as the unprivileged `postgres`
user (the directory is chowned to it).

Each test gets a database of its own (`CREATE DATABASE t_<n> TEMPLATE template0`, dropped
afterwards) and its URL `postgresql://ontwatch@127.0.0.1:<port>/t_<n>` (trust auth: no
password, loopback only).

Fixtures: `pg_server` (session; the running `PgServer`), `pg_url` (a fresh, empty database's
URL), `pg_migrated_url` (a fresh database already at the newest schema: faster).
Without PostgreSQL or psycopg they skip with the reason (tests/ci_guard.py fails such a skip
on CI, where `.ci/run` installs both). Settings:

- `ONTWATCH_TEST_PG_FSYNC=off` turns fsync off (faster on slow disks; on by default).
- `ONTWATCH_TEST_PG_BINDIR=/path/to/bin` picks the binaries instead of the search below.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

USER = "ontwatch"  # the cluster's superuser, as initdb -U names it
RUN_AS = "postgres"  # the unprivileged OS user the server runs as when we are root
START_SECONDS = 60  # bound on pg_ctl start (-t); a slow CI machine may need a while
STOP_SECONDS = 30
_COMMAND_SECONDS = 120  # bound on any one subprocess (initdb is the slowest)


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed.

    Order: ONTWATCH_TEST_PG_BINDIR, `pg_config --bindir` (only if initdb is really there:
    Debian's libpq-dev ships a pg_config without the server), then the newest
    /usr/lib/postgresql/<version>/bin.
    """
    override = os.environ.get("ONTWATCH_TEST_PG_BINDIR")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "initdb").exists() and (Path(out) / "pg_ctl").exists():
            return Path(out)
    candidates = [
        Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()
    ]
    if not candidates:
        return None
    return max(candidates, key=_version_key)


def _version_key(bindir: Path) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, so 15 sorts above 9.6."""
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (0,)


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary directory, on a loopback port of its own."""

    def __init__(self, bindir: Path, *, fsync: bool = True) -> None:
        self.bindir = bindir
        self.fsync = fsync
        # As root in /tmp itself: TMPDIR may be a root-only directory the postgres user
        # cannot enter.
        where = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="ontwatch-pg-", dir=where))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._running = False
        self._names = itertools.count(1)
        self._template: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> PgServer:
        """initdb, then pg_ctl start on a free port (retried: another process may take it)."""
        self._prepare_root()
        self._run(
            [
                str(self.bindir / "initdb"),
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",  # initdb's own final flush only; the server below runs fsync=on
                "-D",
                str(self.data),
            ]
        )
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            result = self._run(self._start_command(), check=False)
            if result.returncode == 0:
                self._running = True
                atexit.register(self.stop)
                return self
            last = result.stdout + result.stderr + self._log_tail()
        self.remove()
        raise RuntimeError(f"PostgreSQL did not start in {attempts} attempts:\n{last}")

    def stop(self) -> None:
        """pg_ctl stop -m fast (immediate if that fails), then remove the directory."""
        if self._running:
            self._running = False
            stop = [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-w"]
            fast = self._run([*stop, "-t", str(STOP_SECONDS), "-m", "fast"], check=False)
            if fast.returncode != 0:
                self._run([*stop, "-t", str(STOP_SECONDS), "-m", "immediate"], check=False)
        self.remove()

    def remove(self) -> None:
        """Delete the cluster's directory (the server must be stopped)."""
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """The libpq URL of one database on this server (trust auth, no password)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, template: str = "template0") -> str:
        """A new empty database (t_<n>) copied from template; returns its name."""
        name = f"t_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def migrated_template(self) -> str:
        """A database at the newest schema (made once), to copy per test: about 0.15 s a copy
        against 0.5 s for an empty database plus the migration (measured with fsync on)."""
        if self._template is None:
            import psycopg

            from storage.schema import migrate_pg

            name = self.create_database()
            with psycopg.connect(self.url(name), autocommit=True, connect_timeout=10) as conn:
                migrate_pg(conn)
            self._template = name
        return self._template

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    # -- internals ---------------------------------------------------------------------------

    def _start_command(self) -> list[str]:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
            f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        )
        return [
            str(self.bindir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_SECONDS),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
        ]

    def _prepare_root(self) -> None:
        """As root, hand the directory to the postgres user (the server refuses root)."""
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", RUN_AS, "--", *argv]
        return ["setpriv", f"--reuid={RUN_AS}", f"--regid={RUN_AS}", "--init-groups", *argv]

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        result = subprocess.run(
            self._as_server_user(argv),
            capture_output=True,
            text=True,
            timeout=_COMMAND_SECONDS,
            cwd=self.root,  # root's cwd may not be readable by postgres
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def skip_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    if find_bindir() is None:
        return "PostgreSQL server not installed (initdb/pg_ctl not found)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (the PostgreSQL driver) not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and no {RUN_AS!r} user to run PostgreSQL as"
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (started on first use, stopped at the end)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    fsync = os.environ.get("ONTWATCH_TEST_PG_FSYNC", "on").lower() not in {"off", "0", "no"}
    bindir = find_bindir()
    assert bindir is not None
    server = PgServer(bindir, fsync=fsync).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database for this test (dropped afterwards)."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def pg_migrated_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh database already at the newest schema (a copy of a template)."""
    name = pg_server.create_database(template=pg_server.migrated_template())
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)
