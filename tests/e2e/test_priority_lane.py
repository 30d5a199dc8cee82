"""A crisis reply and the therapist's alert go out ahead of a backlog of 1,000 queued prompts."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.db.models import Therapist
from bot.services import controls, onboarding, review
from tests.e2e.conftest import BotHarness

BACKLOG = 1000
WITHIN_SECONDS = 2.0


async def _queue_backlog(harness: BotHarness, therapist_id: int) -> None:
    """BACKLOG consenting clients, each with a prompt due now."""
    ids = [await harness.control.create_user(f"Client {n}") for n in range(BACKLOG)]
    settings, clock, library = harness.settings, harness.clock, harness.library
    async with harness.db.transaction() as session:
        for n, telegram_id in enumerate(ids):
            issued = await onboarding.invite_client(
                session, therapist_id=therapist_id, name=f"Client {n}", clock=clock,
                settings=settings, library=library, program=None, timezone="Europe/Berlin")
            check = await onboarding.give_consent(session, issued.token, telegram_id, "en", clock,
                                                  settings, library)
            assert check.client is not None
            await controls.set_timezone(session, check.client, "Europe/Berlin", clock)
            await review.send_now(session, client_id=issued.id, prompt_key="checkin.evening",
                                  library=library, clock=clock, settings=settings)


async def test_crisis_reply_and_alert_overtake_a_thousand_queued_prompts(harness: BotHarness) -> None:
    control = harness.control
    limits = await control.configure(require_user_start=False)
    try:
        async with harness.db.transaction() as session:
            therapist = await onboarding.add_therapist(session, "Dr Rivera", harness.clock,
                                                       harness.settings)
        rivera = await harness.person("Rivera")
        await rivera.send(f"/start {therapist.token}")
        _, sam = await harness.joined("Sam")
        async with harness.db.transaction() as session:
            assert (await session.scalar(select(Therapist.telegram_user_id))) == rivera.id
        await _queue_backlog(harness, therapist.id)
        assert harness.runtime is not None

        # Telegram's real limits on both sides: the backlog drains at 30 a second.
        assert harness.settings.rate_limit_per_second == 30
        await control.configure(global_rate=30, global_burst=30, chat_rate=1, chat_burst=3)
        async def delivered() -> int:
            return sum((await control.stats())["delivered"].values())

        at_start = await delivered()
        draining = asyncio.create_task(harness.runtime.dispatcher.run_until_idle())
        for _ in range(400):  # until two seconds into draining the backlog
            if await delivered() - at_start >= 60:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the backlog did not start draining")

        sam_before = len(await control.bot_messages(sam.id))
        rivera_before = len(await control.bot_messages(rivera.id))
        started = time.monotonic()
        await control.send_text(sam.id, "i can't do this anymore, i want to die")
        await control.wait_for_bot_messages(sam.id, sam_before + 1, within=10)
        reply_after = time.monotonic() - started
        await control.wait_for_bot_messages(rivera.id, rivera_before + 1, within=10)
        alert_after = time.monotonic() - started
        gone_out = await delivered() - at_start - 2  # the backlog's, not the reply and the alert
        draining.cancel()

        print(f"\ncrisis reply after {reply_after:.3f} s, therapist alert after {alert_after:.3f} s, "
              f"with {BACKLOG - gone_out} of the {BACKLOG} queued prompts still waiting")
        assert "988" in (await control.bot_messages(sam.id))[sam_before]["text"]
        assert (await control.bot_messages(rivera.id))[rivera_before]["text"].startswith("Safety alert")
        assert reply_after < WITHIN_SECONDS
        assert alert_after < WITHIN_SECONDS
        assert gone_out < BACKLOG // 4  # the backlog was still there: the lane went ahead of it
        assert (await control.stats())["rate_limited"] == 0
    finally:
        await control.configure(**{k: limits[k] for k in (
            "global_rate", "global_burst", "chat_rate", "chat_burst", "require_user_start")})
