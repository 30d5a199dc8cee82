"""Settings as an admin writes them in .env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import ROOT


def test_env_example_documents_every_setting() -> None:
    """.env.example names every setting the bot reads, and nothing it does not."""
    documented = set(re.findall(r"^INTERLUDE_([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_empty_token_in_env_file_means_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env copied from the example, token left empty, runs the demo with its own database."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    settings = Settings()
    assert settings.demo
    assert settings.sqlalchemy_url.endswith("data/demo.db")


def test_a_token_selects_the_practice_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a token the bot is real and keeps its data apart from the demo's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("INTERLUDE_TELEGRAM_TOKEN=123:abc\n")
    settings = Settings()
    assert not settings.demo
    assert settings.sqlalchemy_url.endswith("data/interlude.db")


def test_a_wrong_time_zone_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the default time zone stops start-up with a message that names it."""
    monkeypatch.setenv("INTERLUDE_DEFAULT_TIMEZONE", "Europe/Berlinn")
    with pytest.raises(ValueError, match="Europe/Berlinn"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_rate_above_telegrams_most_is_refused_against_telegram(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram allows 1,000 messages a second at most; more would trip its limits. Against
    another Bot API server (the emulator, in the benchmarks that turn limits off) it is allowed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTERLUDE_RATE_LIMIT_PER_SECOND", "5000")
    with pytest.raises(ValueError, match="at most 1,000 messages a second"):
        Settings()
    assert Settings(rate_limit_per_second=1000).rate_limit_per_second == 1000
    monkeypatch.setenv("INTERLUDE_TELEGRAM_API_URL", "http://127.0.0.1:8081")
    assert Settings().rate_limit_per_second == 5000
