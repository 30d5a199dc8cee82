"""What a client says is sealed at rest: the database holds no reply text, name or voice.

On SQLite the file itself (and its write-ahead log) is read; on PostgreSQL, whose files are the
server's, every row of every table is read back as the server stores it, without our types.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from bot.db.engine import Database
from bot.db.models import Reply, VoiceNote
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


def raw_database_bytes(path: Path) -> bytes:
    """Everything on disk for a SQLite database: the file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def raw_postgres_rows(url: str) -> bytes:
    """Every row of every table as PostgreSQL holds it (bytea as hex), through plain SQL."""
    db = Database.from_url(url)
    try:
        async with db.engine.connect() as connection:
            tables = list(await connection.scalars(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))
            rows = [row for table in tables for row in await connection.scalars(
                text(f'SELECT row_to_json(t)::text FROM "{table}" t'))]  # noqa: S608 - catalog names
    finally:
        await db.dispose()
    return "\n".join(rows).encode()


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
    url = harness.db.engine.url
    await harness.stop()  # nothing held in memory or half-written; what is stored is what is kept
    if url.get_backend_name() == "sqlite":
        on_disk = raw_database_bytes(Path(url.database or ""))
    else:
        on_disk = await raw_postgres_rows(url.render_as_string(hide_password=False))
        assert b"integration" in on_disk  # the rows were read: plain columns are there
    for secret in (words, "marigold", "Quillfeather", "Zephyrine"):
        assert secret.encode() not in on_disk, f"{secret!r} is readable in the database"
        assert secret.encode().hex().encode() not in on_disk  # nor as bytes in hex
    assert voice[:16] not in on_disk
    assert voice[:16].hex().encode() not in on_disk
