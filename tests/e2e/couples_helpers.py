"""Two simulated partners in one couple, built through the same paths a practice uses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.db.models import Couple, Delivery, PairGroup
from bot.services import couples
from tests.e2e.conftest import BotHarness, Person

SHARE_YES, SHARE_NO = "Share with my partner", "Keep for me and my therapist"
USUALLY_SHARE, USUALLY_KEEP = "Yes, usually share mine", "Yes, usually keep mine"


@dataclass
class Partner:
    client_id: int
    person: Person

    async def said_since(self, count: int) -> list[str]:
        return (await self.person.said())[count:]


@dataclass
class CoupleUnderTest:
    id: int
    sam: Partner
    alex: Partner


async def linked_couple(harness: BotHarness, *, sam_zone: str = "Europe/Berlin",
                        alex_zone: str = "Europe/Berlin", sam_usual: str = USUALLY_SHARE,
                        alex_usual: str = USUALLY_SHARE, program: str | None = None,
                        agree: bool = True) -> CoupleUnderTest:
    """Sam and Alex join, their therapist links them, and (by default) both agree."""
    sam_id, sam = await harness.joined("Sam", program=None, timezone=sam_zone)
    alex_id, alex = await harness.joined("Alex", program=None, timezone=alex_zone)
    async with harness.db.transaction() as session:
        couple = await couples.link(session, first=sam_id, second=alex_id, clock=harness.clock,
                                    library=harness.library, program=program)
    await harness.deliver_due()
    if agree:
        await sam.tap(sam_usual)
        await alex.tap(alex_usual)
        await harness.deliver_due()
    return CoupleUnderTest(couple.id, Partner(sam_id, sam), Partner(alex_id, alex))


async def send_pair(harness: BotHarness, couple_id: int, prompt: str = "repair.appreciation") -> int:
    """A one-off paired prompt to both partners, sent now; returns its pair group id."""
    async with harness.db.transaction() as session:
        group = await couples.send_now(session, couple_id, prompt, harness.library, harness.clock,
                                       harness.settings)
        group_id = group.id
    await harness.deliver_due()
    return group_id


async def group_row(harness: BotHarness, group_id: int) -> PairGroup:
    async with harness.db.transaction() as session:
        group = await session.get(PairGroup, group_id)
        assert group is not None
        return group


async def group_deliveries(harness: BotHarness, group_id: int) -> list[Delivery]:
    async with harness.db.transaction() as session:
        return list(await session.scalars(select(Delivery).where(
            Delivery.pair_group_id == group_id).order_by(Delivery.id)))


async def couple_row(harness: BotHarness, couple_id: int) -> Couple:
    async with harness.db.transaction() as session:
        couple = await session.get(Couple, couple_id)
        assert couple is not None
        return couple
