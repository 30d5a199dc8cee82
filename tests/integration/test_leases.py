"""Leases on claimed prompts: only the dispatcher holding one may record the send."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Delivery, DeliveryStatus
from bot.library import Library
from bot.scheduling.dispatcher import Dispatcher, Outbound
from bot.scheduling.planner import Planner
from tests.integration.helpers import RecordingSender, active_client

BERLIN = ZoneInfo("Europe/Berlin")


class HeldSender(RecordingSender):
    """A Sender whose sends wait until released, as a prompt waits for its turn."""

    def __init__(self, first_id: int) -> None:
        super().__init__()
        self._next_id = first_id
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def send_prompt(self, item: Outbound) -> int:
        self.asked.set()
        await self.release.wait()
        return await super().send_prompt(item)


async def _one_due(db: Database, clock: FakeClock, settings: Settings, library: Library) -> None:
    await active_client(db, clock, settings, library)
    await Planner(db, library, clock, settings).plan()
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))


async def _due_row(db: Database, clock: FakeClock) -> Delivery:
    async with db.transaction() as session:
        return (await session.scalars(select(Delivery).where(
            Delivery.scheduled_for <= clock.now()))).one()


async def test_a_send_whose_lease_was_taken_over_is_not_recorded_as_the_old_owners(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A process that stalled past its lease, while another has claimed the prompt again, does
    not write its send over the new holder's claim; the new holder records its own send."""
    await _one_due(db, clock, settings, library)
    stalled, taking_over = HeldSender(first_id=100), HeldSender(first_id=200)
    old = Dispatcher(db, stalled, clock, settings)
    new = Dispatcher(db, taking_over, clock, settings)
    old_tick = asyncio.create_task(old.tick())
    await stalled.asked.wait()
    clock.advance(seconds=settings.send_lease_seconds + 1)  # no renewal came: a stalled process
    new_tick = asyncio.create_task(new.tick())
    await taking_over.asked.wait()

    stalled.release.set()
    old_report = await old_tick
    row = await _due_row(db, clock)
    assert (old_report.sent, old_report.overtaken) == (0, 1)
    assert (row.status, row.claimed_by, row.telegram_message_id) == (
        DeliveryStatus.SENDING, new.owner, None)

    taking_over.release.set()
    new_report = await new_tick
    row = await _due_row(db, clock)
    assert (new_report.recovered, new_report.sent) == (1, 1)
    assert (row.status, row.telegram_message_id, row.claimed_by) == (DeliveryStatus.SENT, 201, None)


async def test_a_late_send_is_kept_when_nobody_took_the_prompt_over(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A send that finished after its lease ran out, with the prompt given back but not yet
    claimed again, is recorded: it will not be sent a second time."""
    await _one_due(db, clock, settings, library)
    stalled = HeldSender(first_id=100)
    old = Dispatcher(db, stalled, clock, settings)
    old_tick = asyncio.create_task(old.tick())
    await stalled.asked.wait()
    clock.advance(seconds=settings.send_lease_seconds + 1)
    async with db.transaction() as session:  # what another process's recovery of it leaves
        await session.execute(update(Delivery).where(Delivery.scheduled_for <= clock.now())
                              .values(status=DeliveryStatus.PENDING, claimed_at=None,
                                      claimed_by=None))

    stalled.release.set()
    assert (await old_tick).sent == 1
    row = await _due_row(db, clock)
    assert (row.status, row.telegram_message_id) == (DeliveryStatus.SENT, 101)
    assert (await Dispatcher(db, RecordingSender(), clock, settings).tick()).sent == 0


async def test_a_live_process_keeps_its_lease_while_its_prompts_wait(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """While a claimed prompt waits for its turn, its holder renews the lease: another process
    finds nothing to take over, however long the wait."""
    await _one_due(db, clock, settings, library)
    quick = settings.model_copy(update={"send_lease_seconds": 0.3})
    waiting = HeldSender(first_id=100)
    holder = Dispatcher(db, waiting, clock, quick)
    holding = asyncio.create_task(holder.tick())
    await waiting.asked.wait()
    other = Dispatcher(db, RecordingSender(), clock, quick)
    for _ in range(8):  # well over two leases
        clock.advance(seconds=0.1)
        await asyncio.sleep(0.2)  # the holder renews every 0.1 s
        report = await other.tick()
        assert (report.recovered, report.sent) == (0, 0)
    waiting.release.set()
    assert (await holding).sent == 1
    row = await _due_row(db, clock)
    assert (row.status, row.telegram_message_id) == (DeliveryStatus.SENT, 101)
