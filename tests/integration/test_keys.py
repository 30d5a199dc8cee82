"""Keys: rotation reseals everything while keeping it readable; missing or wrong keys say so."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.encryption import EncryptionKeyError, KeyRing, use_key_ring
from bot.db.engine import Database, key_ring_for
from bot.db.migrate import upgrade
from bot.db.models import Client, Reply, ReplyKind
from bot.db.rotation import count_by_key, rotate_keys
from bot.library import Library
from bot.services import onboarding
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.postgres import PostgresServer

OLD, NEW = KeyRing.generate_key(), KeyRing.generate_key()


@pytest.fixture
def old_key() -> Iterator[None]:
    use_key_ring(KeyRing([OLD]))
    yield
    use_key_ring(KeyRing([TEST_ENCRYPTION_KEY]))


async def _client_with_replies(db: Database, settings: Settings, library: Library, clock: FakeClock,
                               count: int) -> int:
    async with db.transaction() as session:
        therapist = await onboarding.add_therapist(session, "Dr Rivera", clock, settings)
        issued = await onboarding.invite_client(
            session, therapist_id=therapist.id, name="Sam", clock=clock, settings=settings,
            library=library, program=None, timezone="Europe/Berlin")
        session.add_all(Reply(client_id=issued.id, kind=ReplyKind.TEXT, text=f"reply number {n}",
                              created_at=clock.now()) for n in range(count))
    return issued.id


@pytest.mark.usefixtures("old_key")
async def test_rotation_moves_every_value_to_the_new_key(
    db: Database, settings: Settings, library: Library, clock: FakeClock
) -> None:
    client_id = await _client_with_replies(db, settings, library, clock, count=23)
    old_id = KeyRing([OLD]).primary_id

    use_key_ring(KeyRing([NEW, OLD]))  # the admin puts the new key first
    async with db.transaction() as session:  # everything still reads while both keys are there
        assert (await session.get(Client, client_id)).display_name == "Sam"
    assert (await count_by_key(db))[old_id] == 25  # 23 replies and two names

    rewritten = await rotate_keys(db, batch=5)
    assert rewritten["replies.text"] == 23
    assert rewritten["clients.display_name"] == 1
    assert old_id not in await count_by_key(db)
    assert sum((await rotate_keys(db, batch=5)).values()) == 0  # a second run has nothing to do

    use_key_ring(KeyRing([NEW]))  # the old key can go now
    async with db.transaction() as session:
        texts = sorted(await session.scalars(select(Reply.text)))
    assert texts == sorted(f"reply number {n}" for n in range(23))


@pytest.mark.usefixtures("old_key")
async def test_rotation_never_overwrites_newer_words(
    db: Database, settings: Settings, library: Library, clock: FakeClock
) -> None:
    """A reply edited between a batch's read and its write keeps the client's new words."""
    await _client_with_replies(db, settings, library, clock, count=1)
    use_key_ring(KeyRing([NEW, OLD]))
    async with db.transaction() as session:
        stale = (await session.execute(text("SELECT id, text FROM replies"))).one()
        reply = await session.get(Reply, stale.id)
        reply.text = "edited while the rotation ran"
    async with db.transaction() as session:  # the rotation's compare-and-swap with the stale value
        result = await session.execute(
            text("UPDATE replies SET text = :new WHERE id = :id AND text = :old"),
            {"new": "whatever", "id": stale.id, "old": stale.text})
        assert result.rowcount == 0
    await rotate_keys(db)
    async with db.transaction() as session:
        assert await session.scalar(select(Reply.text)) == "edited while the rotation ran"


@pytest.mark.usefixtures("old_key")
async def test_a_missing_key_is_named_and_an_altered_value_refused(
    db: Database, settings: Settings, library: Library, clock: FakeClock
) -> None:
    await _client_with_replies(db, settings, library, clock, count=1)
    use_key_ring(KeyRing([NEW]))
    with pytest.raises(EncryptionKeyError, match="not in INTERLUDE_ENCRYPTION_KEYS"):
        async with db.transaction() as session:
            await session.scalar(select(Reply.text))

    use_key_ring(KeyRing([OLD]))
    async with db.transaction() as session:
        stored = (await session.execute(text("SELECT text FROM replies"))).scalar_one()
        tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
        await session.execute(text("UPDATE replies SET text = :t"), {"t": tampered})
    with pytest.raises(EncryptionKeyError, match="altered"):
        async with db.transaction() as session:
            await session.scalar(select(Reply.text))


def test_a_real_practice_must_set_keys_and_the_demo_makes_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    practice = make_settings(tmp_path, telegram_token="123:abc", encryption_keys=None)
    with pytest.raises(EncryptionKeyError, match="interlude keys generate"):
        key_ring_for(practice)

    demo = make_settings(tmp_path, encryption_keys=None)
    first = key_ring_for(demo)
    assert "generated an encryption key" in caplog.text
    assert (tmp_path / "encryption.key").stat().st_mode & 0o077 == 0  # only its owner may read it
    assert key_ring_for(demo).primary_id == first.primary_id  # made once, then reused


async def test_upgrade_seals_rows_written_before_encryption(
    tmp_path: Path, backend: str, postgres: PostgresServer | None
) -> None:
    """A practice upgrading from a version without encryption has its existing text sealed."""
    path = tmp_path / "old.db"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{path}"
    else:
        assert postgres is not None
        url = await postgres.create_database(migrated=False)
    db = Database.from_url(url)
    try:
        await upgrade(db.engine, "0003")
        async with db.engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO therapists (id, display_name, created_at) VALUES (1, 'Dr Old', '2026-01-01')"))
            await connection.execute(text(
                "INSERT INTO clients (id, therapist_id, display_name, status, quiet_start, quiet_end, "
                "created_at) VALUES (1, 1, 'Plainname', 'active', '21:30', '08:00', '2026-01-01')"))
            await connection.execute(text(
                "INSERT INTO replies (id, client_id, question, kind, text, created_at) "
                "VALUES (1, 1, 0, 'text', 'plain words from before', '2026-01-01')"))
        await upgrade(db.engine)
        async with db.transaction() as session:
            client = await session.get(Client, 1)
            assert (client.display_name, await session.scalar(select(Reply.text))) == (
                "Plainname", "plain words from before")
        # The column as the database holds it, read without our types.
        async with db.engine.connect() as connection:
            stored = str(await connection.scalar(text("SELECT text FROM replies")))
            name = str(await connection.scalar(text("SELECT display_name FROM clients")))
    finally:
        await db.dispose()
        if postgres is not None and backend == "postgresql":
            await postgres.drop_database(url)
    assert "plain words" not in stored
    assert "Plainname" not in name
    if backend == "sqlite":
        with sqlite3.connect(path) as raw:
            assert "plain words" not in raw.execute("SELECT text FROM replies").fetchone()[0]
