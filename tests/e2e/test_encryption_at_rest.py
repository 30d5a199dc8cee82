"""What a client says is sealed on disk: the database file holds no reply text, name or voice."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Reply, VoiceNote
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


def raw_database_bytes(path: Path) -> bytes:
    """Everything on disk for a SQLite database: the file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_database_file_holds_no_reply_text_names_or_voice(harness: BotHarness) -> None:
    _, alex = await harness.joined("Zephyrine", program="integration-7day",
                                   anchor=datetime(2026, 3, 1, 18, 0, tzinfo=BERLIN))
    harness.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    words = "The marigold light behind my ribs felt like forgiveness"
    await alex.send(words)
    await alex.send_payload(voice={"duration": 4})
    await alex.send("Quillfeather is what I named the calm part")
    await harness.settle()

    async with harness.db.transaction() as session:
        voice = await session.scalar(select(VoiceNote.content))
        texts = set(await session.scalars(select(Reply.text)))
    assert words in texts  # the bot itself reads everything back as it was said
    assert voice is not None
    assert len(voice) > 16
    await harness.stop()  # nothing held in memory or half-written; the file is what is kept
    on_disk = raw_database_bytes(Path(harness.db.engine.url.database or ""))
    for secret in (words, "marigold", "Quillfeather", "Zephyrine"):
        assert secret.encode() not in on_disk, f"{secret!r} is readable in the database file"
    assert voice[:16] not in on_disk
