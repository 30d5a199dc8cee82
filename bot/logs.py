"""Logging set-up: ours at the configured level, libraries that would log client text kept quiet."""

from __future__ import annotations

import logging

# python-telegram-bot logs whole updates (client text) at DEBUG, and httpx logs request URLs,
# which carry the bot token; APScheduler warns about every skipped overlapping run.
QUIET_LOGGERS = ("telegram", "httpx", "httpcore", "aiohttp", "apscheduler", "uvicorn.access",
                 "aiosqlite", "alembic", "sqlalchemy.engine")


def quiet_library_loggers() -> None:
    """Hold the loggers that could carry client text or the token at WARNING, whatever the root."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_library_loggers()
