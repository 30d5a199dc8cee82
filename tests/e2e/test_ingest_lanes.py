"""Handling the inbox: each person's messages in order, different people's side by side, and
carrying on when the database goes away for a moment."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from bot import messages
from bot.db.models import Client, InboxUpdate, Reply
from bot.handlers import answers
from bot.messages import render
from bot.services import replies
from tests.e2e.conftest import BotHarness
from tests.integration.helpers import active_client
from tests.postgres import PostgresServer


async def _stored(harness: BotHarness) -> dict[int, list[str]]:
    """Each client's stored words, in the order they were stored."""
    async with harness.db.transaction() as session:
        rows = (await session.execute(select(Client.telegram_user_id, Reply.text)
                                      .join(Client, Client.id == Reply.client_id)
                                      .order_by(Reply.id))).all()
    stored: dict[int, list[str]] = {}
    for user, text in rows:
        stored.setdefault(user, []).append(text)
    return stored


async def test_a_slow_answer_holds_up_nobody_else_and_keeps_its_own_order(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Sam's first message is slow to handle, Alex's is stored and thanked; Sam's later
    messages wait for the first and are stored after it, in the order Sam sent them."""
    _, sam = await harness.joined("Sam")
    _, alex = await harness.joined("Alex")
    alex_stored = asyncio.Event()
    real_screening, real_store = answers.respond_to_crisis, replies.record_message
    real_store_words = replies.store_words

    async def slow_for_sam(update: Any, context: Any, message: Any, text: Any, **kwargs: Any) -> Any:
        # Held (before any transaction: one would hold every writer up on SQLite) until Alex's
        # answer is in: handled one at a time, this would never end.
        if text == "first, and slow":
            await asyncio.wait_for(alex_stored.wait(), timeout=5)
        return await real_screening(update, context, message, text, **kwargs)

    async def store(session: Any, client: Client, *args: Any, **kwargs: Any) -> Any:
        outcome = await real_store(session, client, *args, **kwargs)
        if client.telegram_user_id == alex.id:
            alex_stored.set()
        return outcome

    async def store_words(connection: Any, *args: Any, telegram_user_id: int,
                          **kwargs: Any) -> Any:
        answered = await real_store_words(connection, *args, telegram_user_id=telegram_user_id,
                                          **kwargs)
        if telegram_user_id == alex.id:
            alex_stored.set()
        return answered

    monkeypatch.setattr(answers, "respond_to_crisis", slow_for_sam)
    monkeypatch.setattr(replies, "record_message", store)
    monkeypatch.setattr(replies, "store_words", store_words)
    sam_says = ["first, and slow", "second", "third"]
    for text in sam_says[:1]:
        await harness.control.send_text(sam.id, text)
    await harness.control.send_text(alex.id, "meanwhile, from Alex")
    for text in sam_says[1:]:
        await harness.control.send_text(sam.id, text)
    harness.said_by_people += [*sam_says, "meanwhile, from Alex"]
    await harness.settle()

    stored = await _stored(harness)
    assert stored[sam.id] == sam_says
    assert stored[alex.id] == ["meanwhile, from Alex"]
    assert (await alex.said())[-1] == render(messages.UNPROMPTED_MESSAGE)


async def test_many_people_writing_at_once_are_each_stored_once_in_order(harness: BotHarness) -> None:
    """Twenty people send five messages each, all at once: a hundred stored, each person's in
    the order written, each thanked once per message; and every update is marked handled in the
    inbox with its raw payload gone."""
    await harness.control.configure(require_user_start=False)
    users = [await harness.control.create_user(f"Client {n}") for n in range(20)]
    for user in users:
        await active_client(harness.db, harness.clock, harness.settings, harness.library,
                            program=None, telegram_id=user, name=f"Client {user}")

    async def write(user: int) -> None:
        for n in range(5):
            await harness.control.send_text(user, f"note {n} from {user}")

    await asyncio.gather(*(write(user) for user in users))
    await harness.settle(within=60)
    stored = await _stored(harness)
    assert {user: stored.get(user) for user in users} == {
        user: [f"note {n} from {user}" for n in range(5)] for user in users}
    thanked = Counter({user: len(await harness.control.bot_messages(user)) for user in users})
    assert set(thanked.values()) == {5}
    async with harness.db.transaction() as session:
        inbox = (await session.execute(select(InboxUpdate.processed_at, InboxUpdate.payload))).all()
    assert len(inbox) >= 100
    assert all(row.processed_at is not None and row.payload is None for row in inbox)


async def test_a_handled_message_whose_mark_fails_is_thanked_once(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away just after Sam's message is stored and thanked, before the inbox
    is marked: the bot marks it once the database is back, instead of handling it again, so Sam
    hears the thanks once."""
    _, sam = await harness.joined("Sam")
    assert harness.runtime is not None
    inbox = harness.runtime.inbox
    real_done_many = inbox.done_many
    refused: list[int] = []

    async def done_many(update_ids: Any, error: Any = None) -> None:
        if len(refused) < 2:
            refused.extend(update_ids)
            raise ConnectionError("the database is away")
        await real_done_many(update_ids, error)

    monkeypatch.setattr(inbox, "done_many", done_many)
    before = len(await sam.said())
    harness.said_by_people.append("a reply while the database blinks")
    await harness.control.send_text(sam.id, "a reply while the database blinks")
    await harness.settle()

    assert refused, "the mark never failed"
    assert await _stored(harness) == {sam.id: ["a reply while the database blinks"]}
    said = (await sam.said())[before:]
    assert said == [render(messages.UNPROMPTED_MESSAGE)]
    async with harness.db.transaction() as session:
        marked = (await session.execute(select(InboxUpdate.processed_at).where(
            InboxUpdate.update_id.in_(refused)))).scalars().all()
    assert marked
    assert all(at is not None for at in marked)


async def test_a_postgresql_restart_while_replies_arrive_loses_nothing(
    harness: BotHarness, backend: str, postgres: PostgresServer | None
) -> None:
    """PostgreSQL restarts while thirty people write: the bot carries on by itself, and every
    message is stored once and thanked."""
    if backend != "postgresql" or postgres is None or not postgres.can_restart:
        pytest.skip("a PostgreSQL server of the tests' own")
    await harness.control.configure(require_user_start=False)
    users = [await harness.control.create_user(f"Client {n}") for n in range(30)]
    for user in users:
        await active_client(harness.db, harness.clock, harness.settings, harness.library,
                            program=None, telegram_id=user, name=f"Client {user}")
    assert harness.runtime is not None
    poller = harness.runtime.poller
    for user in users[:10]:
        await harness.control.send_text(user, f"before from {user}")
    restart = asyncio.create_task(asyncio.to_thread(postgres.restart))
    for user in users[10:]:
        await harness.control.send_text(user, f"during from {user}")
        await asyncio.sleep(0.05)
    await restart
    for user in users:
        await harness.control.send_text(user, f"after from {user}")
    await harness.settle(within=60)

    assert harness.runtime._tasks
    assert not any(task.done() for task in harness.runtime._tasks), "the poller stopped"
    stored = await _stored(harness)
    for user in users:
        expected = [f"{when} from {user}" for when in
                    (("before",) if user in users[:10] else ("during",))] + [f"after from {user}"]
        assert stored.get(user) == expected
    thanked = [len(await harness.control.bot_messages(user)) for user in users]
    assert thanked == [2] * len(users)
    assert poller.processed >= 2 * len(users)


async def test_updates_are_stored_as_telegram_sent_them(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the inbox stores is the update as Telegram sent it, a field the library does not
    know yet included, and the words are kept and thanked as usual."""
    _, sam = await harness.joined("Sam")
    assert harness.runtime is not None
    inbox = harness.runtime.inbox
    stored: list[dict[str, Any]] = []
    real_store = inbox.store

    async def store(updates: Any) -> None:
        updates = list(updates)
        stored.extend(updates)
        await real_store(updates)

    monkeypatch.setattr(inbox, "store", store)
    message = {"message_id": 9001, "date": 1772442000, "text": "a field from the future",
               "from": {"id": sam.id, "is_bot": False, "first_name": "Sam"},
               "chat": {"id": sam.id, "type": "private", "first_name": "Sam"},
               "a_field_from_the_future": {"kind": "new"}}
    harness.said_by_people.append(message["text"])
    update_id = await harness.control.inject({"message": message})
    await harness.settle()
    assert stored == [{"update_id": update_id, "message": message}]
    assert (await _stored(harness))[sam.id] == ["a field from the future"]
    assert (await sam.said())[-1] == render(messages.UNPROMPTED_MESSAGE)
