"""The `interlude` command on a real database, called as an admin calls it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_client_thresholds_command_changes_one_and_keeps_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`interlude client thresholds` sets one threshold, leaves the other, and 0 restores the
    practice's own."""
    import asyncio

    from bot.cli import main
    from bot.clock import SystemClock
    from bot.config import Settings
    from bot.db.engine import open_database
    from bot.db.migrate import upgrade
    from bot.library import load_library
    from tests.conftest import ROOT
    from tests.integration.helpers import active_client

    monkeypatch.setenv("INTERLUDE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INTERLUDE_PROMPTS_DIR", str(ROOT / "prompts"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    async def seed() -> int:
        db = open_database(settings)
        await upgrade(db.engine)
        client_id = await active_client(db, SystemClock(), settings, load_library(ROOT / "prompts"))
        await db.dispose()
        return client_id

    client_id = asyncio.run(seed())

    def thresholds(*args: str) -> dict[str, int]:
        main(["client", "thresholds", "--client", str(client_id), *args, "--json"])
        return dict(json.loads(capsys.readouterr().out))

    practice = (settings.checkin_alert_intensity, settings.checkin_alert_shutdown_days)
    assert thresholds("--intensity", "7")["intensity"] == 7
    changed = thresholds("--shutdown-days", "5")
    assert (changed["intensity"], changed["shutdown_days"]) == (7, 5)
    restored = thresholds("--intensity", "0")
    assert (restored["intensity"], restored["shutdown_days"]) == (practice[0], 5)
