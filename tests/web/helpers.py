"""Client history for dashboard tests: prompts sent, check-ins and words, written as the bot would."""

from __future__ import annotations

from datetime import timedelta

from bot.db.models import (
    Alert,
    CheckIn,
    Client,
    Delivery,
    DeliveryStatus,
    NervousSystemState,
    Reply,
    ReplyKind,
    VoiceNote,
)
from bot.scheduling.planner import new_delivery
from tests.web.conftest import Practice


async def history(practice: Practice, client_id: int, *, days: int = 10,
                  words: str = "My chest felt lighter today.") -> dict[str, int]:
    """`days` evening check-ins (the last with words and a voice note), and one open alert."""
    ids: dict[str, int] = {}
    now = practice.clock.now()
    async with practice.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        states = [NervousSystemState.GROUNDED, NervousSystemState.ACTIVATED,
                  NervousSystemState.SHUT_DOWN]
        for day in range(days, 0, -1):
            sent = now - timedelta(days=day, hours=-2)
            delivery = new_delivery(client, practice.library.prompts["checkin.evening"],
                                    scheduled_for=sent, settings=practice.settings)
            delivery.status, delivery.sent_at = DeliveryStatus.ANSWERED, sent
            delivery.answered_at = sent + timedelta(minutes=5)
            session.add(delivery)
            await session.flush()
            session.add(CheckIn(client_id=client_id, delivery_id=delivery.id,
                                state=states[day % 3], intensity=day % 10,
                                recorded_at=sent + timedelta(minutes=5)))
            ids["delivery"] = delivery.id
        reply = Reply(client_id=client_id, delivery_id=ids["delivery"], kind=ReplyKind.TEXT,
                      text=words, telegram_message_id=9001, created_at=now - timedelta(hours=20))
        voice = Reply(client_id=client_id, delivery_id=ids["delivery"], kind=ReplyKind.VOICE,
                      voice_file_id="f1", voice_duration=4, telegram_message_id=9002,
                      created_at=now - timedelta(hours=19))
        session.add_all([reply, voice])
        await session.flush()
        session.add(VoiceNote(reply_id=voice.id, mime_type="audio/ogg", content=b"OggS-voice"))
        alert = Alert(client_id=client_id, therapist_id=client.therapist_id, category="self_harm",
                      created_at=now - timedelta(hours=2))
        session.add(alert)
        await session.flush()
        unanswered = new_delivery(client, practice.library.prompts["checkin.now"],
                                  scheduled_for=now - timedelta(hours=3), settings=practice.settings)
        unanswered.status, unanswered.sent_at = DeliveryStatus.SENT, now - timedelta(hours=3)
        session.add(unanswered)
        await session.flush()
        ids.update(reply=reply.id, voice=voice.id, alert=alert.id, unanswered=unanswered.id)
    return ids


async def sent_deliveries(practice: Practice, client_id: int) -> list[Delivery]:
    from sqlalchemy import select
    async with practice.db.transaction() as session:
        return list(await session.scalars(select(Delivery).where(Delivery.client_id == client_id)))
