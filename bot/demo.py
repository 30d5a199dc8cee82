"""Demo data: a therapist, two clients to play (invites), and one client with a few weeks of
history, so the dashboard's charts and timeline have something to show.

The client with history is a person in the emulator too (a fixed id), so a visitor can also
chat as them and see new answers join the old ones.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import (
    CheckIn,
    Client,
    ClientStatus,
    Delivery,
    DeliveryStatus,
    Enrolment,
    NervousSystemState,
    Reply,
    ReplyKind,
)
from bot.library import Library
from bot.scheduling.planner import new_delivery
from bot.services import onboarding, schedules

HISTORY_CLIENT = "Morgan"
HISTORY_TELEGRAM_ID = 5_550_001  # the emulator person who plays Morgan
HISTORY_DAYS = 28
WORDS = (
    "Tight chest after the meeting, eased on the walk home.",
    "Noticed my jaw unclench when I put the phone down.",
    "Heavy, but I could stay with it for a minute.",
    "A part of me wanted to argue. I let it speak on paper instead.",
    "Slept better. Breath slower in the evening.",
    "Felt far away most of the day.",
    "Called my sister. Warmth in the stomach afterwards.",
)
REFLECTIONS = (
    ("integration.body-after", "Lighter in the shoulders, and very tired. Tears came easily."),
    ("integration.what-shifted", "The old story about not being enough felt quieter, "
                                 "like it was in another room."),
    ("integration.fear-softened", "My hands stopped gripping. I could look at the memory "
                                  "without leaving."),
)


async def seed(session: AsyncSession, clock: Clock, settings: Settings,
               library: Library) -> tuple[int, list[tuple[str, str]]]:
    """The demo therapist and clients, once; returns (therapist id, [(who, invite token)])."""
    therapist = await onboarding.add_therapist(session, "Dr Rivera", clock, settings)
    zone = settings.default_timezone
    evening = await onboarding.invite_client(
        session, therapist_id=therapist.id, name="Sam", clock=clock, settings=settings,
        library=library, program="evening-checkin", timezone=zone)
    integration = await onboarding.invite_client(
        session, therapist_id=therapist.id, name="Alex", clock=clock, settings=settings,
        library=library, program="integration-7day", anchor=clock.now() - timedelta(hours=20),
        timezone=zone)
    await _history(session, therapist.id, clock, settings, library)
    return therapist.id, [
        ("Sam (daily evening check-in)", evening.token),
        ("Alex (7 days of integration after a medicine session yesterday)", integration.token)]


async def fresh_invites(session: AsyncSession, therapist_id: int, clock: Clock,
                        settings: Settings) -> list[tuple[str, str]]:
    """New tokens for the demo clients nobody has played yet (tokens are kept only hashed)."""
    found = []
    for client in await session.scalars(select(Client).where(
            Client.therapist_id == therapist_id, Client.status == ClientStatus.INVITED)):
        found.append((client.display_name,
                      await schedules.reissue_invite(session, client, clock, settings)))
    return found


async def _history(session: AsyncSession, therapist_id: int, clock: Clock, settings: Settings,
                   library: Library) -> None:
    chance = random.Random(7)  # the same history every time
    now = clock.now()
    invite = await onboarding.invite_client(
        session, therapist_id=therapist_id, name=HISTORY_CLIENT, clock=clock, settings=settings,
        library=library, program="evening-checkin", timezone=settings.default_timezone)
    client = await session.get(Client, invite.id)
    assert client is not None
    client.status, client.telegram_user_id = ClientStatus.ACTIVE, HISTORY_TELEGRAM_ID
    client.timezone, client.language_code = settings.default_timezone, "en"
    client.created_at = now - timedelta(days=HISTORY_DAYS + 1)
    for enrolment in await session.scalars(select(Enrolment).where(Enrolment.client_id == client.id)):
        enrolment.starts_at = enrolment.created_at = client.created_at
        enrolment.planned_through = now
    session_day = now - timedelta(days=10, hours=3)
    await schedules.record_medicine_session(session, client, session_day, library, clock,
                                            therapist_id=therapist_id, reanchor=False)
    prompts = [p for p in library.prompts.values() if p.key.startswith("checkin.evening")]
    for day in range(HISTORY_DAYS, 0, -1):
        sent = (now - timedelta(days=day)).replace(hour=19, minute=0, second=0, microsecond=0)
        delivery = _sent(client, chance.choice(prompts), sent, settings)
        session.add(delivery)
        if chance.random() < 0.15:  # some evenings go unanswered
            delivery.status, delivery.closed_at = DeliveryStatus.EXPIRED, delivery.expires_at
            continue
        await session.flush()
        after_session = 0 <= (sent - session_day).days <= 3
        # Shut down and activated more often early on; the grounded window widens over the weeks.
        grounded = chance.random() < (0.3 + 0.5 * (HISTORY_DAYS - day) / HISTORY_DAYS
                                      + (0.2 if after_session else 0))
        state = NervousSystemState.GROUNDED if grounded else chance.choice(
            [NervousSystemState.ACTIVATED, NervousSystemState.SHUT_DOWN])
        intensity = chance.randint(2, 5) if grounded else chance.randint(5, 9)
        answered = sent + timedelta(minutes=chance.randint(3, 90))
        delivery.answered_at = answered
        session.add(CheckIn(client_id=client.id, delivery_id=delivery.id, state=state,
                            intensity=intensity, recorded_at=answered))
        if chance.random() < 0.4:
            session.add(Reply(client_id=client.id, delivery_id=delivery.id, kind=ReplyKind.TEXT,
                              text=chance.choice(WORDS), created_at=answered + timedelta(minutes=1)))
    for number, (key, words) in enumerate(REFLECTIONS, start=1):
        sent = session_day + timedelta(days=number, hours=-1)
        delivery = _sent(client, library.prompts[key], sent, settings)
        delivery.answered_at = sent + timedelta(hours=1)
        session.add(delivery)
        await session.flush()
        session.add(Reply(client_id=client.id, delivery_id=delivery.id, kind=ReplyKind.TEXT,
                          text=words, created_at=sent + timedelta(hours=1)))


def _sent(client: Client, prompt: object, at: object, settings: Settings) -> Delivery:
    delivery = new_delivery(client, prompt, scheduled_for=at, settings=settings)  # type: ignore[arg-type]
    delivery.status = DeliveryStatus.ANSWERED
    delivery.sent_at = delivery.due_at
    delivery.closed_at = delivery.expires_at
    return delivery
