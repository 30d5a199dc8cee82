"""Crisis language gets an immediate, warm answer with resources, and the therapist is alerted."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import Alert, Reply
from bot.services import onboarding, safety
from tests.e2e.conftest import BotHarness

BERLIN = ZoneInfo("Europe/Berlin")


async def test_crisis_reply_comes_at_once_and_the_therapist_is_alerted(harness: BotHarness) -> None:
    """A client who writes crisis language at night gets resources now; their therapist gets an alert."""
    async with harness.db.transaction() as session:
        therapist = await onboarding.add_therapist(session, "Dr Rivera", harness.clock, harness.settings)
    rivera = await harness.person("Rivera")
    await rivera.send(f"/start {therapist.token}")
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=BERLIN))  # inside quiet hours

    await sam.send("honestly everyone would be better off without me")
    reply = await sam.last()
    assert "988" in reply
    assert "can't respond to emergencies" in reply
    assert "Dr Rivera" in reply
    alert_text = await rivera.last()
    assert alert_text.startswith("Safety alert: Sam")
    assert "thoughts of suicide" in alert_text
    assert "better off" not in alert_text  # the client's words stay out of the alert
    async with harness.db.transaction() as session:
        alert = await session.scalar(select(Alert))
        kept = await session.scalar(select(Reply.text))
    assert alert is not None
    assert (alert.category, alert.notified_at is not None) == ("suicidal", True)
    assert kept == "honestly everyone would be better off without me"

    # The therapist acknowledges it 12 minutes later; the referral report counts it.
    harness.clock.advance(minutes=12)
    async with harness.db.transaction() as session:
        assert [a["client"] for a in await safety.alerts(session, open_only=True)] == ["Sam"]
        assert await safety.acknowledge(session, alert.id, harness.clock)
        assert not await safety.acknowledge(session, alert.id, harness.clock)
        report = await safety.report(
            session, datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN)
        )
        assert await safety.alerts(session, open_only=True) == []
    assert (report["alerts"], report["open"]) == (1, 0)
    assert report["by_category"]["suicidal"] == 1
    assert report["minutes_to_acknowledge"] == {"median": 12.0, "max": 12.0}


async def test_negated_and_idiomatic_messages_get_the_usual_thanks(harness: BotHarness) -> None:
    """'I'm not suicidal' or 'this traffic is killing me' raise no alarm."""
    _, sam = await harness.joined("Sam")
    for text in ("I'm not suicidal, just really tired today", "this traffic is killing me"):
        await sam.send(text)
        assert "988" not in await sam.last()
    async with harness.db.transaction() as session:
        assert await session.scalar(select(Alert)) is None


async def test_crisis_language_is_answered_even_while_setting_a_time_zone(harness: BotHarness) -> None:
    """Screening comes before anything else, even when the bot waits for a typed time zone."""
    _, token = await harness.invite("Lee", timezone=None)
    lee = await harness.person("Lee")
    await lee.send(f"/start {token}")
    await lee.tap("Yes, I agree")
    await lee.send("i want to die")
    assert "988" in await lee.last()


async def test_people_never_invited_get_resources_and_nothing_is_kept(harness: BotHarness) -> None:
    """A stranger in crisis is not turned away: they get the resources, and nothing is stored."""
    stranger = await harness.person("Stranger")
    await stranger.send("ich will nicht mehr leben")
    assert "988" in await stranger.last()
    async with harness.db.transaction() as session:
        assert await session.scalar(select(Reply)) is None
        assert await session.scalar(select(Alert)) is None


async def test_resources_reach_the_person_even_when_the_database_fails(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If storing fails, the crisis resources still go out at once, once; the alert follows on retry."""
    from bot.handlers import crisis

    _, sam = await harness.joined("Sam")
    real = crisis.client_by_telegram
    failures: list[int] = []

    async def flaky(*args: object, **kwargs: object) -> object:
        if len(failures) < 2:
            failures.append(1)
            raise RuntimeError("database unavailable")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(crisis, "client_by_telegram", flaky)
    before = len(await sam.said())
    await sam.send("i can't do this anymore, i want to die")
    said = (await sam.said())[before:]
    assert sum("988" in text for text in said) == 1
    async with harness.db.transaction() as session:
        assert [a.category for a in await session.scalars(select(Alert))] == ["suicidal"]
