"""Fixtures shared by every test: settings, a migrated database, the real library, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.encryption import KeyRing, use_key_ring
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.library import Library, load_library

ROOT = Path(__file__).resolve().parents[1]
# One key for the whole run, so every database, process and CLI call in a test can read the others.
TEST_ENCRYPTION_KEY = KeyRing.generate_key()


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


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await upgrade(database.engine)
    yield database
    await database.dispose()
