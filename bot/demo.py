"""Demo data: a therapist, two clients to play (invites), one client with a few weeks of
history, and a couple with three weeks of paired prompts and check-ins, so the dashboard's
charts, timeline and couple's view have something to show.

The clients with history are people in the emulator too (fixed ids), so a visitor can also
chat as them (Morgan alone, or both partners of the couple) and see new answers join the old.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import (
    CheckIn,
    Client,
    ClientStatus,
    Couple,
    CouplePartner,
    Delivery,
    DeliveryStatus,
    Enrolment,
    NervousSystemState,
    PairGroup,
    PairKind,
    PairState,
    QuestionnaireResponse,
    QuestionnaireStatus,
    Reply,
    ReplyKind,
    ReplyRevision,
)
from bot.library import Library
from bot.scheduling.planner import new_delivery
from bot.services import onboarding, questionnaires, schedules

HISTORY_CLIENT = "Morgan"
HISTORY_TELEGRAM_ID = 5_550_001  # the emulator person who plays Morgan
HISTORY_DAYS = 28
# The couple: Jo tends to reach out, Ari to pull back; both agreed to paired prompts.
PARTNERS = (("Jo", 5_550_002), ("Ari", 5_550_003))
COUPLE_DAYS = 21
# Everyone in the demo with a fixed emulator account (name, Telegram user id).
EMULATOR_PEOPLE = ((HISTORY_CLIENT, HISTORY_TELEGRAM_ID), *PARTNERS)
# Paired prompts, oldest first: days ago, Jo's prompt and Ari's (complementary pairs differ),
# each one's answer (None: no answer) and whether its author shared it.
PAIRS: tuple[tuple[int, str, str, tuple[str | None, bool], tuple[str | None, bool]], ...] = (
    (20, "couple.appreciation-and-need", "couple.appreciation-and-need",
     ("You waited up for me on Tuesday. I'd love one evening this week without phones.", True),
     ("The soup on Sunday. I need a bit of quiet after work before we talk.", False)),
    (17, "couple.i-reached", "couple.they-reached",
     ("I asked how the interview went. I was hoping you'd let me in a little.", True),
     ("Jo asked about the interview. I said 'fine', but it did land. I wanted to say more.",
      True)),
    (13, "couple.felt-close", "couple.felt-close",
     ("Cooking together on Saturday, the music on, nobody rushing.", True), (None, False)),
    (10, "couple.they-reached", "couple.i-reached",
     ("Ari sat next to me after the call with my mum. I didn't need words.", True),
     ("I sat with Jo after the phone call. I hoped it would be enough without talking.", True)),
    (6, "couple.small-wish", "couple.small-wish",
     ("That we try the pause words when it heats up, instead of me following you out.", False),
     ("A walk on Sunday morning, just the two of us.", True)),
    (3, "couple.felt-cared-for", "couple.felt-cared-for",
     ("When you texted that you'd be late, before I started worrying.", True),
     ("Jo left me the last of the coffee and a note. Small, but I noticed.", True)),
)
# Ari changed the words of the answer of 10 days ago after it had been passed on to Jo.
FIRST_WORDS = "I sat with Jo after the phone call."
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
    await _couple(session, therapist.id, clock, settings, library)
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
    await _scores(session, client, session_day, settings, library)


# Morgan's PHQ-9 and GAD-7: a baseline, the day before the session, and 1 and 7 days after;
# the PHQ-9 falls by more than half (a response), the GAD-7 less.
DEMO_SCORES = (
    (-9, [2, 2, 2, 2, 1, 2, 2, 1, 0], [2, 2, 2, 2, 1, 2, 1]),
    (-1, [2, 2, 1, 2, 1, 2, 1, 1, 0], [2, 2, 2, 1, 1, 2, 1]),
    (1, [1, 1, 1, 2, 1, 1, 1, 0, 0], [1, 2, 1, 1, 1, 1, 1]),
    (7, [1, 1, 0, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]),
)


async def _scores(session: AsyncSession, client: Client, session_day: datetime,
                  settings: Settings, library: Library) -> None:
    for day, *answers in DEMO_SCORES:
        for minutes, (key, values) in enumerate(zip(
                ("questionnaire.phq-9", "questionnaire.gad-7"), answers, strict=True)):
            prompt = library.prompts[key]
            assert prompt.questionnaire is not None
            sent = session_day + timedelta(days=day, hours=8 if day > 0 else 0, minutes=minutes)
            delivery = _sent(client, prompt, sent, settings)
            done = sent + timedelta(minutes=6)
            delivery.answered_at, delivery.progress = done, len(values)
            session.add(delivery)
            await session.flush()
            total, band = questionnaires.score(prompt.questionnaire, values)
            session.add(QuestionnaireResponse(
                client_id=client.id, delivery_id=delivery.id, instrument=key,
                status=QuestionnaireStatus.COMPLETE, item=len(values),
                answers={"values": values, "total": total, "band": band}, started_at=sent,
                updated_at=done, completed_at=done, closed_at=done))


def _sent(client: Client, prompt: object, at: object, settings: Settings) -> Delivery:
    delivery = new_delivery(client, prompt, scheduled_for=at, settings=settings)  # type: ignore[arg-type]
    delivery.status = DeliveryStatus.ANSWERED
    delivery.sent_at = delivery.due_at
    delivery.closed_at = delivery.expires_at
    return delivery


async def _partner(session: AsyncSession, therapist_id: int, name: str, telegram_id: int,
                   clock: Clock, settings: Settings, library: Library) -> Client:
    """A client who joined three weeks ago, with their consent on record."""
    invite = await onboarding.invite_client(
        session, therapist_id=therapist_id, name=name, clock=clock, settings=settings,
        library=library, timezone=settings.default_timezone)
    await onboarding.give_consent(session, invite.token, telegram_id, "en", clock, settings,
                                  library)
    client = await session.get(Client, invite.id)
    assert client is not None
    client.timezone = settings.default_timezone
    client.created_at = clock.now() - timedelta(days=COUPLE_DAYS + 2)
    return client


async def _couple(session: AsyncSession, therapist_id: int, clock: Clock, settings: Settings,
                  library: Library) -> None:
    """Jo and Ari: three weeks of paired prompts (some shared, some kept, one unanswered, one
    edited after the reveal), check-ins for both, and a couples medicine session."""
    chance = random.Random(11)
    now = clock.now()
    jo, ari = [await _partner(session, therapist_id, name, telegram_id, clock, settings, library)
               for name, telegram_id in PARTNERS]
    agreed = now - timedelta(days=COUPLE_DAYS)
    couple = Couple(therapist_id=therapist_id, created_at=agreed - timedelta(hours=3),
                    active_at=agreed)
    session.add(couple)
    await session.flush()
    for position, (client, shares) in enumerate(((jo, True), (ari, False))):
        session.add(CouplePartner(couple_id=couple.id, client_id=client.id,
                                  open_client_id=client.id, position=position, agreed_at=agreed,
                                  shares_by_default=shares))
    session.add(Enrolment(couple_id=couple.id, program_key="couple-weekly-appreciation",
                          starts_at=agreed, created_at=agreed, planned_through=now))
    medicine = (now - timedelta(days=8)).replace(hour=10, minute=0, second=0, microsecond=0)
    for client in (jo, ari):
        await schedules.record_medicine_session(session, client, medicine, library, clock,
                                                therapist_id=therapist_id, reanchor=False)

    for days, jo_key, ari_key, jo_answer, ari_answer in PAIRS:
        sent = (now - timedelta(days=days)).replace(hour=18, minute=0, second=0, microsecond=0)
        group = PairGroup(couple_id=couple.id, kind=PairKind.PROMPT, state=PairState.REVEALED,
                          created_at=sent, expires_at=sent + timedelta(hours=20))
        session.add(group)
        await session.flush()
        answered_at: list[object] = []
        sides = []
        for client, key, (words, shares), delay in ((jo, jo_key, jo_answer, 40),
                                                     (ari, ari_key, ari_answer, 150)):
            delivery = _sent(client, library.prompts[key], sent, settings)
            delivery.pair_group_id = group.id
            delivery.prompt = {**delivery.prompt, "pair": PairKind.PROMPT.value}
            delivery.expires_at = delivery.closed_at = group.expires_at
            session.add(delivery)
            await session.flush()
            if words is None:
                delivery.status, delivery.answered_at = DeliveryStatus.EXPIRED, None
                continue
            at = sent + timedelta(minutes=delay + chance.randint(0, 30))
            delivery.answered_at, delivery.shared = at, shares
            delivery.share_chosen_at = at + timedelta(minutes=1)
            reply = Reply(client_id=client.id, delivery_id=delivery.id, kind=ReplyKind.TEXT,
                          text=words, created_at=at)
            session.add(reply)
            answered_at.append(at)
            sides.append((delivery, reply))
        if len(sides) < 2:
            group.state, group.closed_at = PairState.EXPIRED, group.expires_at
            continue
        revealed = max(answered_at) + timedelta(minutes=2)  # type: ignore[type-var]
        group.closed_at = revealed
        for delivery, reply in sides:
            if delivery.shared:
                delivery.revealed_at = revealed
            if reply.text and reply.text.startswith(FIRST_WORDS) and reply.text != FIRST_WORDS:
                await session.flush()
                session.add(ReplyRevision(reply_id=reply.id, text=FIRST_WORDS,
                                          replaced_at=revealed + timedelta(hours=1)))
                reply.edited_at = revealed + timedelta(hours=1)

    # Evening check-ins: Jo more often activated, Ari more often shut down; both steadier lately.
    prompts = [p for p in library.prompts.values() if p.key.startswith("checkin.evening")]
    for client, leaning in ((jo, NervousSystemState.ACTIVATED),
                            (ari, NervousSystemState.SHUT_DOWN)):
        for day in range(COUPLE_DAYS, 0, -1):
            if chance.random() < 0.2:
                continue
            sent = (now - timedelta(days=day)).replace(hour=20, minute=30, second=0,
                                                       microsecond=0)
            delivery = _sent(client, chance.choice(prompts), sent, settings)
            session.add(delivery)
            await session.flush()
            grounded = chance.random() < 0.25 + 0.55 * (COUPLE_DAYS - day) / COUPLE_DAYS
            state = NervousSystemState.GROUNDED if grounded else leaning
            intensity = chance.randint(2, 4) if grounded else chance.randint(5, 8)
            answered = sent + timedelta(minutes=chance.randint(2, 60))
            delivery.answered_at = answered
            session.add(CheckIn(client_id=client.id, delivery_id=delivery.id, state=state,
                                intensity=intensity, recorded_at=answered))
