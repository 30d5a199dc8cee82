"""Runs Alembic migrations on an engine we already have (the CLI, `make run`, and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, String
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def compare_type(context: Any, inspected: Any, metadata: Any, inspected_type: Any,
                 metadata_type: Any) -> bool | None:
    """Type changes worth a migration. SQLite stores any text in any text column, so there a
    VARCHAR(200) or JSON column that now holds sealed text needs no rebuild; elsewhere the
    default comparison applies."""
    if (context.dialect.name == "sqlite" and isinstance(inspected_type, String | JSON)
            and isinstance(getattr(metadata_type, "impl", metadata_type), String)):
        return False
    return None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
