"""A couple's history for dashboard tests, through the couples service as the bot would write it:
linked, both agreed, one paired prompt revealed (one answer shared, one kept, the shared one
edited after the reveal), one still waiting for an answer, and check-ins for both partners."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    CheckIn,
    Client,
    Delivery,
    DeliveryStatus,
    NervousSystemState,
    PairGroup,
    Reply,
    ReplyKind,
    ReplyRevision,
)
from bot.safety.rules import load_rules
from bot.safety.screening import Screener
from bot.scheduling.planner import new_delivery
from bot.services import couples
from tests.conftest import ROOT
from tests.web.conftest import Practice

SHARED = "Robin made tea when I came home late."
SHARED_EDITED = "Robin made tea when I came home late, and listened."
KEPT = "I felt close on the walk, but I am not ready to say so."
WAITING = "The quiet breakfast on Sunday."


async def linked_couple(practice: Practice, therapist: int, first: str = "Robin",
                        second: str = "Jules") -> tuple[int, int, int]:
    """Two clients of `therapist`, linked and both agreed; returns (couple, first, second)."""
    a = await practice.client(therapist, first)
    b = await practice.client(therapist, second)
    async with practice.db.transaction() as session:
        couple = await couples.link(session, first=a, second=b, clock=practice.clock,
                                    library=practice.library, therapist_id=therapist)
        for client_id, choice in ((a, "s"), (b, "k")):
            client = await session.get(Client, client_id)
            assert client is not None
            await couples.answer_pairing(session, client, couple.id, choice, practice.clock,
                                         practice.library)
        return couple.id, a, b


async def answered(session: AsyncSession, delivery: Delivery, text: str,
                   at: datetime) -> Reply:
    """The partner's words for their side of a pair, stored as the bot stores an answer."""
    delivery.status, delivery.answered_at = DeliveryStatus.ANSWERED, at
    reply = Reply(client_id=delivery.client_id, delivery_id=delivery.id, kind=ReplyKind.TEXT,
                  text=text, created_at=at)
    session.add(reply)
    await session.flush()
    return reply


async def sent_pair(session: AsyncSession, practice: Practice, couple_id: int,
                    key: str) -> tuple[PairGroup, list[Delivery]]:
    """A paired prompt sent to both partners now: its group and each partner's delivery."""
    group = await couples.send_now(session, couple_id, key, practice.library, practice.clock,
                                   practice.settings)
    members = list(await session.scalars(select(Delivery).where(
        Delivery.pair_group_id == group.id).order_by(Delivery.id)))
    for delivery in members:
        delivery.status, delivery.sent_at = DeliveryStatus.SENT, practice.clock.now()
    return group, members


async def couple_history(practice: Practice, therapist: int) -> dict[str, int]:
    couple_id, robin, jules = await linked_couple(practice, therapist)
    screener = Screener(load_rules(ROOT / "prompts" / "safety.yaml"))
    clock = practice.clock
    ids = {"couple": couple_id, "robin": robin, "jules": jules}
    async with practice.db.transaction() as session:
        group, members = await sent_pair(session, practice, couple_id, "couple.felt-close")
        by_client = {d.client_id: d for d in members}
        jules_reply = await answered(session, by_client[jules], SHARED,
                                    clock.now() + timedelta(minutes=30))
        await answered(session, by_client[robin], KEPT, clock.now() + timedelta(hours=2))
        ids["revealed"], ids["shared_reply"] = group.id, jules_reply.id
    clock.advance(hours=2, minutes=5)
    async with practice.db.transaction() as session:
        for client_id, share in ((jules, True), (robin, False)):
            client = await session.get(Client, client_id)
            assert client is not None
            await couples.choose_share(session, client, by_client[client_id].id, share, clock,
                                       screener)
        state = (await session.get(PairGroup, ids["revealed"])).state  # type: ignore[union-attr]
        assert state.value == "revealed", state
        reply = await session.get(Reply, ids["shared_reply"])
        assert reply is not None
        session.add(ReplyRevision(reply_id=reply.id, text=reply.text,
                                  replaced_at=clock.now() + timedelta(hours=1)))
        reply.text, reply.edited_at = SHARED_EDITED, clock.now() + timedelta(hours=1)
    clock.advance(days=3)
    async with practice.db.transaction() as session:
        group, members = await sent_pair(session, practice, couple_id, "couple.small-wish")
        robins = next(d for d in members if d.client_id == robin)
        await answered(session, robins, WAITING, clock.now() + timedelta(minutes=10))
        ids["open"] = group.id
        states = [NervousSystemState.GROUNDED, NervousSystemState.ACTIVATED,
                  NervousSystemState.SHUT_DOWN]
        for client_id, days, hours in ((robin, 5, 1), (jules, 4, 3)):
            client = await session.get(Client, client_id)
            assert client is not None
            for day in range(1, days + 1):
                at = clock.now() - timedelta(days=day, hours=hours)
                checkin = new_delivery(client, practice.library.prompts["checkin.evening"],
                                       scheduled_for=at, settings=practice.settings)
                checkin.status, checkin.sent_at, checkin.answered_at = (
                    DeliveryStatus.ANSWERED, at, at)
                session.add(checkin)
                await session.flush()
                session.add(CheckIn(client_id=client_id, delivery_id=checkin.id,
                                    state=states[(day + hours) % 3],
                                    intensity=day + 2 if client_id == robin else 9 - day,
                                    recorded_at=at))
    clock.advance(minutes=20)
    return ids
