"""Fixtures shared by every test: settings, a migrated database, the real library, a clock.

Every test that touches the database runs twice, on SQLite and on PostgreSQL (a throwaway
server started for the session, see tests/postgres.py). `INTERLUDE_TEST_BACKENDS=sqlite`
runs one half only. Without PostgreSQL the second half is skipped, loudly, except under CI,
where it fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.encryption import KeyRing, use_key_ring
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.library import Library, load_library
from tests.postgres import PostgresServer, PostgresUnavailable

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = [name for name in os.environ.get("INTERLUDE_TEST_BACKENDS", "sqlite,postgresql").split(",")
            if name]
_postgres_problem: list[str] = []
# The long reliability scenarios run with `make soak` (INTERLUDE_SOAK=1), never in `make test`.
collect_ignore = [] if os.environ.get("INTERLUDE_SOAK") else ["soak"]
# One key for the whole run, so every database, process and CLI call in a test can read the others.
TEST_ENCRYPTION_KEY = KeyRing.generate_key()
# The trained crisis classifier, kept for the bot processes the tests start (one checkout's own).
CLASSIFIER_CACHE = ROOT / "test-artifacts" / "classifier-cache"


@pytest.fixture(autouse=True, scope="session")
def _encryption_keys() -> None:
    use_key_ring(KeyRing([TEST_ENCRYPTION_KEY]))


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "prompts_dir": ROOT / "prompts",
        "default_timezone": "Europe/Berlin",
        "dispatch_interval_seconds": 0,
        "poll_timeout_seconds": 1,
        "practice_name": "Riverside Practice",
        "encryption_keys": TEST_ENCRYPTION_KEY,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def library() -> Library:
    return load_library(ROOT / "prompts")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL server, or None where there is none (outside CI)."""
    if "postgresql" not in BACKENDS:
        yield None
        return
    server = PostgresServer()
    try:
        server.start()
        server.prepare_template()
    except PostgresUnavailable as error:
        server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL and it could not be started: {error}", pytrace=False)
        _postgres_problem.append(str(error))
        print(f"\n*** PostgreSQL unavailable, its tests are skipped: {error}", file=sys.stderr)
        yield None
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, postgres: PostgresServer | None) -> str:
    """Which database this run of the test uses: "sqlite" or "postgresql"."""
    if request.param == "postgresql" and postgres is None:
        pytest.skip("PostgreSQL is not available here (see scripts/ensure-postgres)")
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path,
                       postgres: PostgresServer | None) -> AsyncIterator[str]:
    """A fresh database with the schema in place, on this run's backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    assert postgres is not None
    url = await postgres.create_database()
    try:
        yield url
    finally:
        await postgres.drop_database(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    await upgrade(database.engine)
    yield database
    await database.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_problem:
        terminalreporter.write_sep("*", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_postgres_problem[0])
        terminalreporter.write_line("Install PostgreSQL (scripts/ensure-postgres) to run them.")
