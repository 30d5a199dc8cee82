"""Nothing lost, nothing doubled: 429 storms, restarts and crashes at awkward moments."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import messages
from bot.db.models import Delivery, DeliveryStatus, Reply
from bot.ingest.inbox import Inbox
from bot.messages import render
from tests.e2e.conftest import BotHarness
from tests.integration.helpers import active_client

BERLIN = ZoneInfo("Europe/Berlin")


async def test_429_storm_loses_nothing_and_doubles_nothing(harness: BotHarness) -> None:
    """With Telegram allowing only 4 messages a second, 12 due prompts all arrive exactly once."""
    await harness.control.configure(global_rate=4, global_burst=2, require_user_start=False)
    users = [await harness.control.create_user(f"Client {n}") for n in range(12)]
    for user in users:
        await active_client(
            harness.db,
            harness.clock,
            harness.settings,
            harness.library,
            telegram_id=user,
            name=f"Client {user}",
        )
    assert harness.runtime is not None
    await harness.runtime.planner.plan()
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    for _ in range(30):  # the fake clock moves on so retry_after waits pass
        await harness.deliver_due()
        async with harness.db.transaction() as session:
            left = await session.scalar(
                select(Delivery.id)
                .where(
                    Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                    Delivery.scheduled_for <= harness.clock.now(),
                )
                .limit(1)
            )
        if left is None:
            break
        harness.clock.advance(seconds=2)
    stats = await harness.control.stats()
    assert stats["rate_limited"] > 0, "the storm did not happen; the test proves nothing"
    received = Counter()
    for user in users:
        received[user] = len(await harness.control.bot_messages(user))
    assert set(received.values()) == {1}
    async with harness.db.transaction() as session:
        statuses = Counter(
            await session.scalars(
                select(Delivery.status).where(Delivery.scheduled_for <= harness.clock.now())
            )
        )
    assert statuses == {DeliveryStatus.SENT: 12}


async def test_messages_sent_while_the_bot_is_down_are_handled_after_restart(harness: BotHarness) -> None:
    """Replies written during a restart are all stored once and acknowledged once."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    await harness.stop()
    for n in range(3):
        await harness.control.send_text(sam.id, f"written while you were away {n}")
    await harness.start()
    await harness.settle()
    async with harness.db.transaction() as session:
        texts = list(await session.scalars(select(Reply.text).order_by(Reply.id)))
    assert texts == [f"written while you were away {n}" for n in range(3)]
    said = await sam.said()
    assert said.count("Thank you. I've kept this for your therapist.") == 1
    assert said.count("Thank you for adding that.") == 2


async def test_crash_after_storing_before_handling_loses_nothing(harness: BotHarness) -> None:
    """Updates stored in the inbox by a process that then died are handled by the next one."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()
    await harness.stop()
    await harness.control.send_text(sam.id, "one")
    await harness.control.send_text(sam.id, "two")
    # A process fetches and commits the batch to the inbox, then dies before handling it.
    await harness.start()
    assert harness.runtime is not None
    harness.runtime.poller.stop()
    await harness.stop()
    dying = Inbox(harness.db, harness.clock)
    from telegram import Bot

    async with Bot("123:abc", base_url=f"{harness.emulator.url}/bot") as bot:
        updates = await bot.get_updates(timeout=0)
        assert len(updates) == 2
        await dying.store([u.to_dict() for u in updates])
    await harness.start()
    await harness.settle()
    async with harness.db.transaction() as session:
        texts = list(await session.scalars(select(Reply.text).order_by(Reply.id)))
    assert texts == ["one", "two"]


async def test_replaying_a_handled_update_stores_nothing_twice(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the process dies after handling but before marking done, the replay is harmless."""
    _, sam = await harness.joined("Sam")
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    await harness.deliver_due()

    real_done = Inbox.done
    crashed: list[int] = []

    async def die_once(self: Inbox, update_id: int) -> None:
        if not crashed:
            crashed.append(update_id)
            raise asyncio.CancelledError  # as if the process stopped right here
        await real_done(self, update_id)

    monkeypatch.setattr(Inbox, "done", die_once)
    await harness.control.send_text(sam.id, "only once, please")
    for _ in range(200):
        if crashed:
            break
        await asyncio.sleep(0.01)
    await harness.stop()
    monkeypatch.setattr(Inbox, "done", real_done)
    await harness.start()
    await harness.settle()
    async with harness.db.transaction() as session:
        texts = list(await session.scalars(select(Reply.text)))
    assert texts == ["only once, please"]


async def test_job_queue_delivers_due_prompts_on_its_own(harness: BotHarness) -> None:
    """With the JobQueue running, a due prompt goes out without anyone calling the dispatcher."""
    _, sam = await harness.joined("Sam")
    before = len(await harness.control.bot_messages(sam.id))
    await harness.stop()
    harness.settings = harness.settings.model_copy(update={"dispatch_interval_seconds": 0.2})
    await harness.start_with_jobs()
    harness.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=BERLIN))
    messages = await harness.control.wait_for_bot_messages(sam.id, before + 1, within=10)
    assert [b["text"] for row in messages[-1]["reply_markup"]["inline_keyboard"] for b in row] == [
        "Grounded",
        "Activated",
        "Shut down",
    ]


async def test_a_passing_failure_is_retried_quietly(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler error that clears on retry stores the reply once and never alarms the client."""
    from bot.services import replies

    _, sam = await harness.joined("Sam")
    calls: list[int] = []

    def flaky(real: Any) -> Any:
        async def store(*args: object, **kwargs: object) -> object:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database went away for a moment")
            return await real(*args, **kwargs)
        return store

    # Both ways an answer is stored: the common case, and the full one.
    monkeypatch.setattr(replies, "store_words", flaky(replies.store_words))
    monkeypatch.setattr(replies, "record_message", flaky(replies.record_message))
    await sam.send("still here")
    assert len(calls) == 2
    said = await sam.said()
    assert not any("something went wrong" in text for text in said)
    assert said[-1] == render(messages.UNPROMPTED_MESSAGE)


async def test_an_update_that_always_fails_gets_one_apology(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every retry fails, the client hears once that something went wrong, with no details."""
    from bot.services import replies

    _, sam = await harness.joined("Sam")

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(replies, "store_words", broken)
    monkeypatch.setattr(replies, "record_message", broken)
    await sam.send("are you there")
    said = await sam.said()  # settled: the lane has said its apology too
    assert sum("something went wrong on my side" in text for text in said) == 1
    assert not any("RuntimeError" in text or "Traceback" in text for text in said)
    await sam.send("/help")  # the bot carries on with the next update
    assert "/pause" in await sam.last()


async def test_six_hours_asleep_catch_up_sends_no_stale_prompts(harness: BotHarness) -> None:
    """The bot is down from 19:30 to 01:30 (Berlin): Sam's 20:00 check-in, five and a half hours
    late, is marked missed and never sent; Nell's in St John's (00:30 Berlin) is one hour late
    and goes; a partner's news queued at 19:30 waits for Sam's quiet hours to end, then goes."""
    from bot.db.models import Client
    from bot.services import couples

    sam_id, sam = await harness.joined("Sam")
    _, nell = await harness.joined("Nell", timezone="America/St_Johns")
    before = {person.id: len(await person.said()) for person in (sam, nell)}
    harness.clock.set(datetime(2026, 3, 2, 19, 30, tzinfo=BERLIN))
    await harness.deliver_due()
    await harness.stop()  # asleep
    async with harness.db.transaction() as session:
        client = await session.get(Client, sam_id)
        assert client is not None
        await couples.notice(session, client, "Your partner shared their answer with you.",
                             key="test:asleep", clock=harness.clock)
    harness.clock.set(datetime(2026, 3, 3, 1, 30, tzinfo=BERLIN))
    await harness.start()
    report = await harness.deliver_due()

    assert report.missed == 1
    assert len(await sam.said()) == before[sam.id], "a stale prompt or the news went out at night"
    said = await nell.said()
    assert len(said) == before[nell.id] + 1
    assert "?" in said[-1]  # the check-in question itself
    async with harness.db.transaction() as session:
        statuses = Counter(await session.scalars(select(Delivery.status).where(
            Delivery.client_id == sam_id, Delivery.due_at < harness.clock.now())))
    assert statuses[DeliveryStatus.MISSED] == 1

    harness.clock.set(datetime(2026, 3, 3, 8, 0, 30, tzinfo=BERLIN))  # Sam's quiet hours end
    await harness.deliver_due()
    assert (await sam.said())[before[sam.id]:] == ["Your partner shared their answer with you."]


async def test_a_failing_slow_telegram_loses_and_doubles_nothing(harness: BotHarness) -> None:
    """Telegram answers a fifth of requests with 502 and is 20 ms slower: 15 prompts arrive once
    each, and 30 replies are each stored once and thanked once."""
    users = await harness.evening_checkins_due(15)
    assert harness.runtime is not None
    await harness.control.configure(fail_ratio=0.2, latency_ms=20)
    for _ in range(40):  # the fake clock moves on so retry backoffs pass
        await harness.deliver_due()
        async with harness.db.transaction() as session:
            left = await session.scalar(select(Delivery.id).where(
                Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                Delivery.scheduled_for <= harness.clock.now()).limit(1))
        if left is None:
            break
        harness.clock.advance(seconds=30)
    prompts = {user: await harness.control.bot_messages(user) for user in users}
    assert [len(sent) for sent in prompts.values()] == [1] * len(users)

    for number in range(2):
        for user in users:
            await harness.control.send_text(user, f"steadier now, reply {number}",
                                            reply_to=prompts[user][0]["message_id"])
    await harness.settle(within=60)
    failed = (await harness.control.stats())["errors"].get("502", 0)
    await harness.control.configure(fail_ratio=0, latency_ms=0)
    async with harness.db.transaction() as session:
        stored = Counter((await session.execute(select(Reply.client_id, Reply.text))).all())
    assert len(stored) == 2 * len(users)
    assert set(stored.values()) == {1}
    thanks = [len(await harness.control.bot_messages(user)) - 1 for user in users]
    assert failed > 0, "no request failed; the test proves nothing"
    assert thanks == [2] * len(users), "a reply went unthanked or was thanked twice"
