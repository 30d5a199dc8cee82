"""Consent is versioned: when what clients agree to changes, they are asked again first."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Consent, Delivery, DeliveryStatus
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


async def _practice_changes_its_crisis_line(harness: BotHarness) -> None:
    await harness.stop()
    harness.settings = harness.settings.model_copy(
        update={"crisis_line": "In an emergency call 112, or the practice line on 030 1234 5678."})
    await harness.start()


async def _check_ins_received(harness: BotHarness, client_id: int) -> int:
    async with harness.db.transaction() as session:
        return len(list(await session.scalars(select(Delivery.id).where(
            Delivery.client_id == client_id, Delivery.sent_at.is_not(None)))))


async def test_an_updated_consent_is_asked_before_the_next_prompt(harness: BotHarness) -> None:
    client_id, sam = await harness.joined("Sam")
    await _practice_changes_its_crisis_line(harness)

    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    asked = await sam.last()
    assert asked.startswith("Before your next prompt: Riverside Practice has updated")
    assert "030 1234 5678" in asked
    assert await sam.buttons() == ["Yes, I agree", "Not now"]
    assert await _check_ins_received(harness, client_id) == 0  # no prompt went out

    harness.clock.advance(minutes=20)
    await harness.deliver_due()
    assert (await sam.last()).startswith("Before your next prompt")  # asked once, not again

    await sam.tap("Yes, I agree")
    assert await sam.last() == "Thank you. Your prompts carry on as before."
    await harness.deliver_due()
    assert "Grounded" in await sam.buttons()  # the held check-in goes out now
    assert await _check_ins_received(harness, client_id) == 1
    async with harness.db.transaction() as session:
        versions = list(await session.scalars(
            select(Consent.version).where(Consent.client_id == client_id).order_by(Consent.id)))
    assert len(versions) == 2
    assert versions[0] != versions[1]


async def test_not_now_holds_prompts_and_start_asks_again(harness: BotHarness) -> None:
    client_id, sam = await harness.joined("Sam")
    await _practice_changes_its_crisis_line(harness)
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    await sam.tap("Not now")
    assert "hold your prompts until you agree" in await sam.last()

    harness.clock.set(datetime(2026, 3, 3, 20, 0, tzinfo=BERLIN))  # the next evening
    await harness.deliver_due()
    assert await _check_ins_received(harness, client_id) == 0
    async with harness.db.transaction() as session:
        missed = list(await session.scalars(select(Delivery.status).where(
            Delivery.client_id == client_id, Delivery.closed_at.is_not(None))))
    assert DeliveryStatus.SENT not in missed

    await sam.send("/start")
    assert (await sam.last()).startswith("Before your next prompt")
    await sam.tap("Yes, I agree")
    await harness.deliver_due()
    assert "Grounded" in await sam.buttons()  # tonight's, not yesterday's
    async with harness.db.transaction() as session:
        sent = list(await session.scalars(select(Delivery.scheduled_for).where(
            Delivery.client_id == client_id, Delivery.status == DeliveryStatus.SENT)))
    assert [s.astimezone(BERLIN).day for s in sent] == [3]
