"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder, on a
free port, stopped and removed at the end. Each test gets a fresh database copied from a template
that the migrations built once.

`INTERLUDE_TEST_POSTGRES_URL` (an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres)
uses a server that is already running instead of starting one.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

TEMPLATE = "interlude_template"
START_TIMEOUT_SECONDS = 60
# Durability is of no use to a server that lives for one test run; speed is.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                 "max_connections=300", "shared_buffers=64MB")


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be found or started; the message says why."""


def _server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("PostgreSQL's server programs (initdb, pg_ctl) are not installed; "
                              "scripts/ensure-postgres installs them")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One server for the test session; `admin_url` is a libpq URL to its `postgres` database."""

    def __init__(self) -> None:
        self.admin_url = ""
        self._folder: Path | None = None
        self._bin: Path | None = None
        self._as_postgres: list[str] = []
        self._numbers = itertools.count(1)

    def start(self) -> None:
        external = os.environ.get("INTERLUDE_TEST_POSTGRES_URL")
        if external:
            self.admin_url = external
            return
        self._bin = _server_bin()
        if os.geteuid() == 0:
            # initdb refuses to run as root; the package's own system user runs the server.
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root without runuser to switch users")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._folder = Path(tempfile.mkdtemp(prefix="interlude-pg-"))
        if self._as_postgres:
            shutil.chown(self._folder, "postgres")
        data = self._folder / "data"
        port = _free_port()
        self._run([str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        options = " ".join(f"-c {setting}" for setting in (
            *FAST_SETTINGS, f"port={port}", "listen_addresses=127.0.0.1",
            f"unix_socket_directories={self._folder}"))
        self._run([str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self._folder / "log"),
                   "-o", options, "-w", "-t", str(START_TIMEOUT_SECONDS), "start"])
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        if self._folder is None or self._bin is None:
            return
        subprocess.run([*self._as_postgres, str(self._bin / "pg_ctl"), "-D",
                        str(self._folder / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, check=False, timeout=60)
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = None

    @property
    def can_restart(self) -> bool:
        """True for a server these tests started (not one named by INTERLUDE_TEST_POSTGRES_URL)."""
        return self._folder is not None

    def restart(self) -> None:
        """Stop and start the same server (for tests of reconnecting)."""
        assert self._folder is not None
        assert self._bin is not None
        data = str(self._folder / "data")
        # With its log file named, or the server would hold our output pipe open.
        self._run([str(self._bin / "pg_ctl"), "-D", data, "-l", str(self._folder / "log"),
                   "-m", "fast", "-w", "restart"])

    def _run(self, command: list[str]) -> None:
        done = subprocess.run([*self._as_postgres, *command], capture_output=True, text=True,
                              check=False, timeout=120)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: "
                                      f"{(done.stderr or done.stdout).strip()[-500:]}")

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for one database on this server, through asyncpg."""
        return str(make_url(self.admin_url).set(drivername="postgresql+asyncpg",
                                                database=database).render_as_string(False))

    async def _admin(self, *statements: str) -> None:
        connection = await asyncpg.connect(self.admin_url)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def prepare_template(self) -> None:
        """Create the template database and run every migration on it, once."""
        from bot.db.engine import Database
        from bot.db.migrate import upgrade

        async def build() -> None:
            await self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
                              f"CREATE DATABASE {TEMPLATE}")
            database = Database.from_url(self.url(TEMPLATE))
            try:
                await upgrade(database.engine)
            finally:
                await database.dispose()

        asyncio.run(build())

    async def create_database(self, *, migrated: bool = True) -> str:
        """A new, empty database (with the schema, unless `migrated` is False); returns its URL."""
        name = f"test_{os.getpid()}_{next(self._numbers)}"
        template = f" TEMPLATE {TEMPLATE}" if migrated else ""
        await self._admin(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        await self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")
