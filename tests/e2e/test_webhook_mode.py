"""Webhook mode: Telegram (the emulator) POSTs updates to the bot, which stores each one before
it answers 200; a request without the secret is refused."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from bot.db.models import InboxUpdate, Reply
from bot.ingest.inbox import Inbox
from tests.e2e.conftest import WEBHOOK_SECRET, BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def webhook_harness(harness: BotHarness) -> BotHarness:
    await harness.stop()
    await harness.start(webhook=True)
    return harness


async def test_a_client_joins_and_answers_through_the_webhook(webhook_harness: BotHarness) -> None:
    """Onboarding, a check-in and its answer all arrive by webhook pushes; nothing polls."""
    harness = webhook_harness
    # The harness polled for a moment before it switched to the webhook.
    polled = (await harness.control.stats())["methods"].get("getUpdates", 0)
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    await sam.tap("Grounded")
    await sam.tap("4")
    await sam.send("Calm after a long walk.")
    async with harness.db.transaction() as session:
        texts = list(await session.scalars(select(Reply.text).where(Reply.text.is_not(None))))
    assert texts == ["Calm after a long walk."]
    stats = await harness.control.stats()
    assert stats["webhook_pushes"] >= 6
    assert stats["methods"].get("getUpdates", 0) == polled


async def test_a_request_without_the_secret_is_refused(webhook_harness: BotHarness) -> None:
    """A POST with a wrong or missing secret header gets 403 and nothing is stored."""
    assert webhook_harness.webhook is not None
    url = f"http://127.0.0.1:{webhook_harness.webhook.port}/hook"
    forged = {"update_id": 999_001, "message": {"message_id": 1, "date": 0, "text": "hello",
                                                "chat": {"id": 5, "type": "private"}}}
    async with httpx.AsyncClient() as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"},
                        {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET[:-1]}):
            assert (await client.post(url, json=forged, headers=headers)).status_code == 403
        right = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        assert (await client.post(url, content=b"not json", headers=right)).status_code == 400
    async with webhook_harness.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(InboxUpdate).where(
            InboxUpdate.update_id == 999_001)) == 0


async def test_an_update_is_answered_only_once_it_is_stored(
    webhook_harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When storing fails the push gets a 500, Telegram sends it again, and it is kept once."""
    harness = webhook_harness
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    real_store = Inbox.store
    failures = [1]

    async def failing_once(self: Inbox, updates: object) -> int:
        if failures:
            failures.pop()
            raise ConnectionError("database went away")
        return await real_store(self, updates)  # type: ignore[arg-type]

    monkeypatch.setattr(Inbox, "store", failing_once)
    await sam.send("Words that must not be lost.")
    stats = await harness.control.stats()
    assert stats["webhook_failures"] == 1
    async with harness.db.transaction() as session:
        texts = list(await session.scalars(select(Reply.text).where(Reply.text.is_not(None))))
    assert texts == ["Words that must not be lost."]
    assert (await sam.said()).count("Thank you. I've kept this for your therapist.") == 1
