"""The outbound path on a real SQLite database: planning, dispatching, catch-up, retries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, ClientStatus, Delivery, DeliveryStatus
from bot.library import Library
from bot.scheduling.dispatcher import Dispatcher, Transient, Unreachable
from bot.scheduling.planner import Planner, new_delivery
from bot.services import controls, onboarding
from tests.integration.helpers import RecordingSender, RetryLater, active_client, deliveries

BERLIN = ZoneInfo("Europe/Berlin")


def local(moment: datetime, zone: ZoneInfo = BERLIN) -> str:
    return moment.astimezone(zone).strftime("%a %H:%M")


async def test_planner_writes_two_days_of_evening_checkins_once(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A daily 20:00 check-in is planned for the next 48 hours, and planning again adds nothing."""
    client_id = await active_client(db, clock, settings, library)
    planner = Planner(db, library, clock, settings)
    assert await planner.plan() == 2
    assert await planner.plan() == 0
    planned = await deliveries(db, client_id)
    assert [local(d.due_at) for d in planned] == ["Mon 20:00", "Tue 20:00"]
    assert len({d.prompt_key for d in planned}) == 2  # the pool is drawn without repeats
    assert all(d.prompt["text"] for d in planned)  # the text is kept as planned


async def test_pool_draws_without_repeats_until_used_up(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """Over as many days as the pool has prompts, each prompt comes exactly once."""
    client_id = await active_client(db, clock, settings, library)
    planner = Planner(db, library, clock, settings)
    pool = next(s for s in library.program("evening-checkin").steps).pool
    for _ in range(len(pool)):
        await planner.plan()
        clock.advance(days=1)
    keys = [d.prompt_key for d in await deliveries(db, client_id)][: len(pool)]
    assert sorted(keys) == sorted(pool)


async def test_changing_time_zone_replans_without_doubling_today(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """Moving from Berlin to New York re-plans pending prompts in New York time, one per day."""
    client_id = await active_client(db, clock, settings, library)
    planner = Planner(db, library, clock, settings)
    await planner.plan()
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await controls.set_timezone(session, client, "America/New_York", clock)
    await planner.plan()
    planned = await deliveries(db, client_id)
    new_york = ZoneInfo("America/New_York")
    assert [local(d.due_at, new_york) for d in planned] == ["Mon 20:00", "Tue 20:00"]


async def test_prompt_inside_quiet_hours_waits_for_the_morning(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """With quiet hours 19:00-08:00, the 20:00 check-in is planned for 08:00 the next day."""
    client_id = await active_client(db, clock, settings, library)
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await controls.set_quiet_hours(session, client, "19:00", "08:00", clock)
    await Planner(db, library, clock, settings).plan()
    first = (await deliveries(db, client_id))[0]
    assert local(first.scheduled_for) == "Mon 20:00"
    assert local(first.due_at) == "Tue 08:00"


async def test_integration_program_follows_the_medicine_session(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """Day-N steps land on the days after the session, in the client's local time."""
    session_time = datetime(2026, 3, 1, 10, 0, tzinfo=BERLIN)  # the day before the clock's "now"
    client_id = await active_client(
        db, clock, settings, library, program="integration-7day", anchor=session_time
    )
    planner = Planner(db, library, clock, settings)
    for _ in range(9):
        await planner.plan()
        clock.advance(days=1)
    planned = await deliveries(db, client_id)
    program = library.program("integration-7day")
    anchored_days = {step.anchor_day for step in program.steps if step.anchor_day is not None}
    planned_days = {(d.scheduled_for.astimezone(BERLIN).date() - session_time.date()).days for d in planned}
    # Day 0 was before the client consented (the clock starts on day 1): never planned late.
    assert planned_days == {day for day in anchored_days if day >= 1}


async def test_dispatcher_sends_what_is_due_and_records_it(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """At 20:00 the check-in goes to the client's chat and is marked sent with its message id."""
    client_id = await active_client(db, clock, settings, library, telegram_id=777)
    await Planner(db, library, clock, settings).plan()
    sender = RecordingSender()
    dispatcher = Dispatcher(db, sender, clock, settings)
    assert (await dispatcher.tick()).sent == 0  # nothing due at 10:00
    clock.set(datetime(2026, 3, 2, 20, 0, 5, tzinfo=BERLIN))
    report = await dispatcher.tick()
    assert report.sent == 1
    assert [item.chat_id for item in sender.sent] == [777]
    first = (await deliveries(db, client_id))[0]
    assert first.status is DeliveryStatus.SENT
    assert first.telegram_message_id is not None


async def test_catch_up_after_downtime_sends_recent_and_skips_stale(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """After six hours down, a prompt 6h late is marked missed; one 30 minutes late is still sent."""
    await active_client(db, clock, settings, library, telegram_id=1)
    await active_client(db, clock, settings, library, telegram_id=2, program="parts-week")
    await Planner(db, library, clock, settings).plan()
    sender = RecordingSender()
    dispatcher = Dispatcher(db, sender, clock, settings)
    # The machine sleeps from 19:00 Monday to 02:00 Tuesday (Berlin), then wakes.
    clock.set(datetime(2026, 3, 3, 2, 0, tzinfo=BERLIN))
    report = await dispatcher.run_until_idle()
    assert report.sent == 0
    assert report.missed == 2  # 19:30 parts prompt and 20:00 check-in: far past the grace
    # A short outage: the parts prompt (19:30) is 30 minutes late on Tuesday and still goes.
    clock.set(datetime(2026, 3, 3, 20, 0, tzinfo=BERLIN))
    report = await dispatcher.run_until_idle()
    assert report.sent == 2
    assert report.missed == 0


async def test_paused_and_stopped_clients_receive_nothing(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A paused client's prompts are skipped; /stop closes everything at once."""
    paused_id = await active_client(db, clock, settings, library, telegram_id=1)
    stopped_id = await active_client(db, clock, settings, library, telegram_id=2)
    await Planner(db, library, clock, settings).plan()
    async with db.transaction() as session:
        paused = await session.get(Client, paused_id)
        stopped = await session.get(Client, stopped_id)
        assert paused is not None
        assert stopped is not None
        controls.pause(paused, 3, clock)
        await onboarding.revoke_consent(session, stopped, clock)
    sender = RecordingSender()
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await Dispatcher(db, sender, clock, settings).run_until_idle()
    assert sender.sent == []
    statuses = {d.client_id: d.status for d in await deliveries(db) if d.due_at <= clock.now()}
    assert statuses == {paused_id: DeliveryStatus.SKIPPED, stopped_id: DeliveryStatus.SKIPPED}


async def test_429_and_network_errors_are_retried_without_loss_or_doubles(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A 429 waits its retry_after and a network error backs off; each prompt goes exactly once."""
    await active_client(db, clock, settings, library)
    await Planner(db, library, clock, settings).plan()
    sender = RecordingSender()
    sender.failures = [RetryLater(7), Transient("NetworkError")]
    dispatcher = Dispatcher(db, sender, clock, settings)
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    assert (await dispatcher.tick()).retried == 1
    assert (await dispatcher.tick()).claimed == 0  # waiting out retry_after
    clock.advance(seconds=7)
    assert (await dispatcher.tick()).retried == 1  # the network error
    clock.advance(seconds=2)
    assert (await dispatcher.tick()).claimed == 0  # backing off: 2^attempts = 4 s
    clock.advance(seconds=2)
    assert (await dispatcher.tick()).sent == 1
    clock.advance(minutes=10)
    assert (await dispatcher.run_until_idle()).sent == 0
    assert len(sender.sent) == 1


async def test_blocked_bot_marks_client_unreachable_and_stops_sending(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A 403 marks the client unreachable; their other pending prompts are skipped."""
    client_id = await active_client(db, clock, settings, library)
    await Planner(db, library, clock, settings).plan()
    sender = RecordingSender()
    sender.failures = [Unreachable("Forbidden")]
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await Dispatcher(db, sender, clock, settings).run_until_idle()
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        assert client.status is ClientStatus.UNREACHABLE
    assert {d.status for d in await deliveries(db, client_id)} == {
        DeliveryStatus.FAILED,
        DeliveryStatus.SKIPPED,
    }


async def test_a_crash_mid_send_is_recovered_after_the_lease(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A row left 'sending' by a dead process is sent again once its lease has expired."""
    client_id = await active_client(db, clock, settings, library)
    await Planner(db, library, clock, settings).plan()
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    async with db.transaction() as session:  # what a process that died after claiming leaves
        await session.execute(
            update(Delivery)
            .where(Delivery.client_id == client_id, Delivery.due_at <= clock.now())
            .values(status=DeliveryStatus.SENDING, claimed_at=clock.now())
        )
    sender = RecordingSender()
    dispatcher = Dispatcher(db, sender, clock, settings)
    assert (await dispatcher.tick()).sent == 0  # the lease still holds
    clock.advance(seconds=settings.send_lease_seconds + 1)
    report = await dispatcher.tick()
    assert (report.recovered, report.sent) == (1, 1)


async def test_one_gentle_reminder_then_expiry(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """An unanswered morning prompt gets one reminder after four hours, then expires."""
    await active_client(db, clock, settings, library, program="parts-week")
    await Planner(db, library, clock, settings).plan()
    sender = RecordingSender()
    dispatcher = Dispatcher(db, sender, clock, settings)
    clock.set(datetime(2026, 3, 2, 19, 30, tzinfo=BERLIN))
    await dispatcher.tick()
    # 23:30 is inside quiet hours: the reminder waits for 08:00.
    clock.set(datetime(2026, 3, 2, 23, 31, tzinfo=BERLIN))
    assert (await dispatcher.housekeeping())["reminders"] == 0
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=BERLIN))
    assert (await dispatcher.housekeeping())["reminders"] == 1
    clock.advance(hours=1)
    assert (await dispatcher.housekeeping())["reminders"] == 0
    clock.set(datetime(2026, 3, 3, 15, 31, tzinfo=BERLIN))  # 20 hours after sending
    assert (await dispatcher.housekeeping())["expired"] == 1
    assert len(sender.reminders) == 1


async def test_planning_after_a_restart_resumes_where_it_stopped(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """A new planner (a restarted process) plans from the stored watermark: no gaps, no doubles."""
    client_id = await active_client(db, clock, settings, library)
    await Planner(db, library, clock, settings).plan()
    clock.advance(hours=30)
    await Planner(db, library, clock, settings).plan()  # as after a restart
    days = [d.due_at.astimezone(BERLIN).date() for d in await deliveries(db, client_id)]
    assert days == sorted(set(days))
    assert len(days) == 3  # Mon, Tue, Wed 20:00 (the 48h horizon from Tue 16:00 reaches Thu 16:00)


async def test_a_large_practice_cannot_hold_back_a_small_one(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """With 12 of one therapist's check-ins and 2 of another's due at 20:00, the first 4 sent
    take turns between the practices; a prompt due a minute earlier goes before all of them."""
    async with db.transaction() as session:
        large = (await onboarding.add_therapist(session, "Large practice", clock, settings)).id
        small = (await onboarding.add_therapist(session, "Small practice", clock, settings)).id
    chats: dict[int, int] = {}
    for n in range(14):
        therapist = large if n < 12 else small
        chat = 9000 + n
        await active_client(db, clock, settings, library, telegram_id=chat, name=f"C{n}",
                            therapist_id=therapist)
        chats[chat] = therapist
    await Planner(db, library, clock, settings).plan()
    early_client = await active_client(db, clock, settings, library, program=None, telegram_id=8999,
                                       therapist_id=large)
    chats[8999] = large
    async with db.transaction() as session:
        client = await session.get(Client, early_client)
        assert client is not None
        session.add(new_delivery(client, library.prompts["checkin.evening"], settings=settings,
                                 scheduled_for=datetime(2026, 3, 2, 19, 59, tzinfo=BERLIN)))
    clock.set(datetime(2026, 3, 2, 20, 0, 30, tzinfo=BERLIN))
    sender = RecordingSender()
    dispatcher = Dispatcher(db, sender, clock, settings.model_copy(update={"dispatch_batch": 5}))
    await dispatcher.tick()
    order = [chats[item.chat_id] for item in sender.sent]
    assert sender.sent[0].chat_id == 8999  # due first, sent first
    assert order[1:] == [large, small, large, small]
    await dispatcher.run_until_idle()
    assert len(sender.sent) == 15
