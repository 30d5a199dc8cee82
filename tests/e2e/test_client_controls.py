"""What a client can do in the chat: /help, /pause, /resume, /stop, /timezone, /quiet."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Client, ClientStatus, Consent, Delivery, DeliveryStatus, Reply
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


async def client_row(harness: BotHarness, client_id: int) -> Client:
    async with harness.db.transaction() as session:
        client = await session.get(Client, client_id)
    assert client is not None
    return client


async def test_help_lists_commands_and_the_crisis_line(harness: BotHarness) -> None:
    """/help shows every command and that the bot is not an emergency service."""
    _, sam = await harness.joined()
    await sam.send("/help")
    text = await sam.last()
    for command in ("/pause", "/resume", "/timezone", "/quiet", "/stop"):
        assert command in text
    assert "988" in text


async def test_pause_for_days_then_resume(harness: BotHarness) -> None:
    """/pause 3 skips the evening check-ins; /resume brings them back the same evening."""
    _client_id, sam = await harness.joined()
    await sam.send("/pause 3")
    assert "Paused until 2026-03-05 10:00" in await sam.last()
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    before = len(await sam.said())
    await harness.deliver_due()
    assert len(await sam.said()) == before  # nothing arrived while paused

    harness.clock.set(datetime(2026, 3, 3, 12, 0, tzinfo=BERLIN))
    await sam.send("/resume")
    assert "Prompts will start again" in await sam.last()
    harness.clock.set(datetime(2026, 3, 3, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    assert await sam.buttons() == ["Grounded", "Activated", "Shut down"]
    await sam.send("/resume")
    assert "not paused" in await sam.last()


async def test_pause_without_days_lasts_until_resume_and_bad_days_are_explained(harness: BotHarness) -> None:
    """/pause alone pauses until /resume; /pause soon gets a kind explanation."""
    _client_id, sam = await harness.joined()
    await sam.send("/pause soon")
    assert "a number from 1 to 90" in await sam.last()
    await sam.send("/pause")
    assert "until you type /resume" in await sam.last()
    harness.clock.set(datetime(2026, 3, 20, 20, 0, tzinfo=BERLIN))
    before = len(await sam.said())
    await harness.runtime.planner.plan()  # type: ignore[union-attr]
    await harness.deliver_due()
    assert len(await sam.said()) == before


async def test_stop_revokes_consent_at_once_and_keeps_nothing_new(harness: BotHarness) -> None:
    """/stop ends every prompt now, says how to come back, and later words are not stored."""
    client_id, sam = await harness.joined()
    await sam.send("/stop")
    assert "ask your therapist for a new invite link" in await sam.last()
    client = await client_row(harness, client_id)
    assert client.status is ClientStatus.STOPPED
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    before = len(await sam.said())
    await harness.deliver_due()
    assert len(await sam.said()) == before
    await sam.send("Are you still there?")
    assert "not keeping new messages" in await sam.last()
    await sam.send("/start")
    assert "ask your therapist for a new invite link" in await sam.last()
    async with harness.db.transaction() as session:
        assert await session.scalar(select(Reply)) is None
        consent = await session.scalar(select(Consent))
        assert consent is not None
        assert consent.revoked_at is not None
        statuses = set(await session.scalars(select(Delivery.status)))
    assert statuses <= {DeliveryStatus.SKIPPED}


async def test_timezone_can_be_typed_as_a_city(harness: BotHarness) -> None:
    """/timezone → Change → typing 'new york' sets America/New_York and re-plans in it."""
    client_id, sam = await harness.joined()
    await sam.send("/timezone")
    assert "Europe/Berlin" in await sam.last()
    await sam.tap("Change time zone")
    await sam.send("Atlantis")
    assert "couldn't find that time zone" in await sam.last()
    await sam.send("new york")
    assert "America/New York" in await sam.last()
    client = await client_row(harness, client_id)
    assert client.timezone == "America/New_York"
    async with harness.db.transaction() as session:
        pending = list(
            await session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.PENDING))
        )
    new_york = ZoneInfo("America/New_York")
    assert {d.due_at.astimezone(new_york).strftime("%H:%M") for d in pending} == {"20:00"}


async def test_quiet_hours_can_be_changed_and_are_checked(harness: BotHarness) -> None:
    """/quiet → Change → '22:00-07:30' is stored; unreadable text gets an example."""
    client_id, sam = await harness.joined()
    await sam.send("/quiet")
    await sam.tap("Change quiet hours")
    await sam.send("late")
    assert "22:00-07:30" in await sam.last()
    await sam.send("22.00 to 7.30")
    assert "22:00 to 07:30" in await sam.last()
    client = await client_row(harness, client_id)
    assert (client.quiet_start, client.quiet_end) == ("22:00", "07:30")


async def test_onboarding_can_pick_another_zone_and_type_quiet_hours(harness: BotHarness) -> None:
    """A client abroad picks their zone from buttons and sets their own quiet hours."""
    client_id, token = await harness.invite("Lee", timezone=None)
    lee = await harness.person("Lee", language_code="en")
    await lee.send(f"/start {token}")
    await lee.tap("Yes, I agree")
    assert "America/Chicago" in await lee.buttons()
    await lee.tap("America/Chicago")
    await lee.tap("Change quiet hours")
    await lee.send("23:00-09:00")
    assert "You're all set" in await lee.last()
    client = await client_row(harness, client_id)
    assert (client.timezone, client.quiet_start) == ("America/Chicago", "23:00")


async def test_blocking_the_bot_marks_the_client_unreachable(harness: BotHarness) -> None:
    """When a client blocks the bot, the next prompt fails with 403 and sending stops."""
    client_id, sam = await harness.joined()
    await harness.control.block(sam.id)
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    report = await harness.deliver_due()
    assert report.failed == 1
    client = await client_row(harness, client_id)
    assert client.status is ClientStatus.UNREACHABLE
    # They unblock and write again: reachable again, and their words are kept.
    await harness.control.unblock(sam.id)
    await sam.send("Sorry, I blocked you by accident.")
    client = await client_row(harness, client_id)
    assert client.status is ClientStatus.ACTIVE
