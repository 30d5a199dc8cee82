"""The core loop end to end: invite, consent, time zone, a prompt on time, answers kept."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import (
    CheckIn,
    Client,
    ClientStatus,
    Consent,
    Delivery,
    DeliveryStatus,
    Reply,
    VoiceNote,
)
from bot.services.onboarding import consent_version
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


async def test_invite_consent_prompt_and_answers(harness: BotHarness) -> None:
    """A client joins by link, consents, gets the 20:00 check-in on time and their answers are kept."""
    client_id, token = await harness.invite("Sam")
    sam = await harness.person("Sam")

    await sam.send(f"/start {token}")
    said = await sam.said()
    assert "Dr Rivera invited you" in said[0]
    assert "not an emergency service" in said[1]
    assert "988" in said[1]
    assert "not end-to-end encrypted" in said[1]
    assert await sam.buttons() == ["Yes, I agree", "Not now"]
    async with harness.db.transaction() as session:  # nothing bound before consent
        client = await session.get(Client, client_id)
        assert client is not None
        assert client.telegram_user_id is None

    await sam.tap("Yes, I agree")
    assert "Europe/Berlin" in await sam.last()
    await sam.tap("Yes, that's right")
    assert "21:30 and 08:00" in await sam.last()
    await sam.tap("That suits me")
    assert "first prompt will come today at 20:00" in await sam.last()

    async with harness.db.transaction() as session:
        consent = await session.scalar(select(Consent).where(Consent.client_id == client_id))
        assert consent is not None
        assert consent.version == consent_version(harness.settings)
        client = await session.get(Client, client_id)
        assert client is not None
        assert client.status is ClientStatus.ACTIVE

    # Nothing before its time; at 20:00 Berlin the check-in arrives with its state buttons.
    before = len(await sam.said())
    await harness.deliver_due()
    assert len(await sam.said()) == before
    harness.clock.set(datetime(2026, 3, 2, 20, 0, 3, tzinfo=BERLIN))
    await harness.deliver_due()
    assert await sam.buttons() == ["Grounded", "Activated", "Shut down"]

    await sam.tap("Activated")
    assert "how strong" in await sam.last()
    await sam.tap("7")
    assert "add a few words" in await sam.last()
    await sam.send("Tight chest, jaw clenched.")
    assert await sam.last() == "Thank you. I've kept this for your therapist."

    async with harness.db.transaction() as session:
        checkin = await session.scalar(select(CheckIn))
        assert checkin is not None
        assert (checkin.state.value, checkin.intensity) == ("activated", 7)
        reply = await session.scalar(select(Reply))
        assert reply is not None
        assert reply.text == "Tight chest, jaw clenched."
        assert reply.delivery_id == checkin.delivery_id
        delivery = await session.get(Delivery, checkin.delivery_id)
        assert delivery is not None
        assert delivery.status is DeliveryStatus.ANSWERED


async def test_integration_prompt_takes_voice_notes_and_reply_to(harness: BotHarness) -> None:
    """A voice note answers the open prompt; a reply-to answers the prompt it quotes."""
    session_at = datetime(2026, 3, 1, 11, 0, tzinfo=BERLIN)
    _, token = await harness.invite("Alex", program="integration-7day", anchor=session_at)
    alex = await harness.person("Alex")
    await harness.onboard(alex, token)

    harness.clock.set(datetime(2026, 3, 2, 18, 31, tzinfo=BERLIN))  # day 1, 18:30 prompt
    await harness.deliver_due()
    harness.clock.set(datetime(2026, 3, 3, 10, 31, tzinfo=BERLIN))  # day 2, 10:30 prompt
    await harness.deliver_due()
    async with harness.db.transaction() as session:
        older, latest = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.status == DeliveryStatus.SENT)
                .order_by(Delivery.sent_at, Delivery.id)
            )
        )
    await alex.send_payload(voice={"duration": 12})
    assert await alex.last() == "Thank you. I've kept your voice note for your therapist."
    # The day-1 prompt, still open, answered by replying to it in Telegram.
    assert older.telegram_message_id is not None
    await alex.send("Answering the earlier one.", reply_to=older.telegram_message_id)

    async with harness.db.transaction() as session:
        voice_note, words = list(await session.scalars(select(Reply).order_by(Reply.id)))
        assert voice_note.voice_duration == 12
        assert voice_note.delivery_id == latest.id
        assert words.delivery_id == older.id
        stored = await session.get(VoiceNote, voice_note.id)
        assert stored is not None
        assert len(stored.content) > 0


async def test_not_now_stores_nothing_and_the_link_still_works(harness: BotHarness) -> None:
    """'Not now' leaves the client un-enrolled; the same link can be used later to join."""
    client_id, token = await harness.invite("Kim")
    kim = await harness.person("Kim")
    await kim.send(f"/start {token}")
    await kim.tap("Not now")
    assert "haven't saved anything" in await kim.last()
    async with harness.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        assert (client.status, client.telegram_user_id) == (ClientStatus.INVITED, None)
        assert await session.scalar(select(Consent)) is None
    await harness.onboard(kim, token)
    assert "You're all set" in await kim.last()
