"""The common answer in words, stored in a few plain statements (`replies.store_words`): for
every situation it takes, it stores exactly what the full path (`record_message`) stores and
says the same thanks; every other situation it leaves to the full path, writing nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot import messages
from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import (
    Client,
    ClientStatus,
    Couple,
    Delivery,
    DeliveryStatus,
    PairGroup,
    PairKind,
    Reply,
    ReplyKind,
)
from bot.handlers.common import writer
from bot.library import Library
from bot.scheduling.planner import prompt_snapshot
from bot.services import replies
from tests.integration.helpers import active_client

USER = 5001
WORDS = "My shoulders are tender and my breath is slower."
PROMPT_MESSAGE, OLDER_PROMPT_MESSAGE, REMINDER_MESSAGE = 700, 600, 701


async def _prompt(db: Database, clock: FakeClock, library: Library, client_id: int, key: str,
                  *, message_id: int, sent_minutes_ago: int = 10, **values: Any) -> int:
    """A prompt sent to the client (open for an answer unless `values` say otherwise)."""
    sent = clock.now() - timedelta(minutes=sent_minutes_ago)
    row = {"client_id": client_id, "prompt_key": key,
           "prompt": prompt_snapshot(library.prompts[key]), "scheduled_for": sent,
           "due_at": sent, "sent_at": sent, "expires_at": clock.now() + timedelta(hours=12),
           "status": DeliveryStatus.SENT, "attempts": 1, "progress": 0,
           "telegram_message_id": message_id, **values}
    async with db.transaction() as session:
        return int((await session.execute(insert(Delivery).values(row).returning(Delivery.id)))
                   .scalar_one())


async def _change(db: Database, table: Any, row_id: int, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(table).where(table.id == row_id).values(**values))


async def _paired(db: Database, clock: FakeClock, client_id: int, delivery_id: int) -> None:
    async with db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        couple = Couple(therapist_id=client.therapist_id, created_at=clock.now())
        session.add(couple)
        await session.flush()
        group = PairGroup(couple_id=couple.id, kind=PairKind.PROMPT,
                          expires_at=clock.now() + timedelta(hours=12), created_at=clock.now())
        session.add(group)
        await session.flush()
        delivery = await session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.pair_group_id = group.id


Setup = Callable[[Database, FakeClock, Library, int], Awaitable[int | None]]


async def open_prompt(db: Database, clock: FakeClock, library: Library, client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale", message_id=PROMPT_MESSAGE)
    return None


async def answered_with_words(db: Database, clock: FakeClock, library: Library,
                              client: int) -> int | None:
    delivery = await _prompt(db, clock, library, client, "attachment.anxious-reassurance",
                             message_id=PROMPT_MESSAGE, status=DeliveryStatus.ANSWERED,
                             answered_at=clock.now() - timedelta(minutes=5))
    async with db.transaction() as session:
        session.add(Reply(client_id=client, delivery_id=delivery, question=0, kind=ReplyKind.TEXT,
                          text="earlier words", telegram_message_id=90,
                          created_at=clock.now() - timedelta(minutes=5)))
    return None


async def answered_by_button_only(db: Database, clock: FakeClock, library: Library,
                                  client: int) -> int | None:
    await _prompt(db, clock, library, client, "checkin.now", message_id=PROMPT_MESSAGE,
                  status=DeliveryStatus.ANSWERED, answered_at=clock.now(), progress=2)
    return None


async def reminded(db: Database, clock: FakeClock, library: Library, client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale", message_id=PROMPT_MESSAGE,
                  reminder_at=clock.now() + timedelta(hours=1))
    return None


async def reply_to_an_older_prompt(db: Database, clock: FakeClock, library: Library,
                                   client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale",
                  message_id=OLDER_PROMPT_MESSAGE, sent_minutes_ago=60)
    await _prompt(db, clock, library, client, "attachment.anxious-reassurance",
                  message_id=PROMPT_MESSAGE)
    return OLDER_PROMPT_MESSAGE


async def reply_to_a_reminder(db: Database, clock: FakeClock, library: Library,
                              client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale",
                  message_id=OLDER_PROMPT_MESSAGE, sent_minutes_ago=60,
                  reminder_message_id=REMINDER_MESSAGE)
    await _prompt(db, clock, library, client, "attachment.anxious-reassurance",
                  message_id=PROMPT_MESSAGE)
    return REMINDER_MESSAGE


async def reply_to_a_closed_prompt(db: Database, clock: FakeClock, library: Library,
                                   client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale",
                  message_id=OLDER_PROMPT_MESSAGE, status=DeliveryStatus.EXPIRED,
                  closed_at=clock.now())
    return OLDER_PROMPT_MESSAGE


async def reply_to_something_else(db: Database, clock: FakeClock, library: Library,
                                  client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale", message_id=PROMPT_MESSAGE)
    return 12345


async def no_prompt(db: Database, clock: FakeClock, library: Library, client: int) -> int | None:
    return None


async def prompt_expired(db: Database, clock: FakeClock, library: Library,
                         client: int) -> int | None:
    await _prompt(db, clock, library, client, "grounding.slow-exhale", message_id=PROMPT_MESSAGE,
                  expires_at=clock.now() - timedelta(minutes=1))
    return None


async def unreachable_client(db: Database, clock: FakeClock, library: Library,
                             client: int) -> int | None:
    await open_prompt(db, clock, library, client)
    await _change(db, Client, client, status=ClientStatus.UNREACHABLE)
    return None


async def stopped_client(db: Database, clock: FakeClock, library: Library,
                         client: int) -> int | None:
    await open_prompt(db, clock, library, client)
    await _change(db, Client, client, status=ClientStatus.STOPPED)
    return None


async def typing_a_setting(db: Database, clock: FakeClock, library: Library,
                           client: int) -> int | None:
    await open_prompt(db, clock, library, client)
    await _change(db, Client, client, awaiting="timezone")
    return None


async def multi_step_prompt(db: Database, clock: FakeClock, library: Library,
                            client: int) -> int | None:
    await _prompt(db, clock, library, client, "integration.week-one-look-back",
                  message_id=PROMPT_MESSAGE)
    return None


async def questionnaire(db: Database, clock: FakeClock, library: Library,
                        client: int) -> int | None:
    await _prompt(db, clock, library, client, "questionnaire.phq-9", message_id=PROMPT_MESSAGE)
    return None


async def paired_prompt(db: Database, clock: FakeClock, library: Library,
                        client: int) -> int | None:
    delivery = await _prompt(db, clock, library, client, "grounding.slow-exhale",
                             message_id=PROMPT_MESSAGE)
    await _paired(db, clock, client, delivery)
    return None


async def stored_before(db: Database, clock: FakeClock, library: Library,
                        client: int) -> int | None:
    await answered_with_words(db, clock, library, client)
    async with db.transaction() as session:
        await session.execute(update(Reply).values(telegram_message_id=MESSAGE))
    return None


MESSAGE = 800
TAKEN = [open_prompt, answered_with_words, answered_by_button_only, reminded,
         reply_to_an_older_prompt, reply_to_a_reminder, reply_to_a_closed_prompt,
         reply_to_something_else, no_prompt, prompt_expired]
LEFT_TO_THE_FULL_PATH = [unreachable_client, stopped_client, typing_a_setting, multi_step_prompt,
                         questionnaire, paired_prompt, stored_before]


async def _state(connection: AsyncConnection, client_id: int) -> dict[str, Any]:
    """What a reply leaves behind: the client's replies, prompts and status."""
    stored = (await connection.execute(
        select(Reply.delivery_id, Reply.question, Reply.kind, Reply.text, Reply.value,
               Reply.telegram_message_id, Reply.created_at)
        .where(Reply.client_id == client_id).order_by(Reply.id))).all()
    prompts = (await connection.execute(
        select(Delivery.id, Delivery.status, Delivery.answered_at, Delivery.reminder_at,
               Delivery.progress)
        .where(Delivery.client_id == client_id).order_by(Delivery.id))).all()
    status = (await connection.execute(select(Client.status).where(Client.id == client_id))).scalar()
    return {"replies": [tuple(row) for row in stored], "prompts": [tuple(row) for row in prompts],
            "status": status}


async def _quickly(db: Database, clock: FakeClock, client_id: int,
                   reply_to: int | None) -> tuple[replies.Answered | None, dict[str, Any]]:
    """The fast path, and the state it leaves; rolled back."""
    async with db.engine.connect() as connection:
        transaction = await connection.begin()
        answered = await replies.store_words(connection, clock.now(), telegram_user_id=USER,
                                             message_id=MESSAGE, text=WORDS,
                                             reply_to_message_id=reply_to)
        state = await _state(connection, client_id)
        await transaction.rollback()
    return answered, state


async def _fully(db: Database, clock: FakeClock, client_id: int,
                 reply_to: int | None) -> tuple[str | None, dict[str, Any]]:
    """The full path as the handler takes it (who is writing, then record_message), and the
    state it leaves; rolled back."""
    session = db.sessions()
    try:
        await session.begin()
        client = await writer(session, USER)
        assert client is not None
        outcome = await replies.record_message(session, client, clock, message_id=MESSAGE,
                                               text=WORDS, reply_to_message_id=reply_to)
        await session.flush()
        state = await _state(await session.connection(), client_id)
        await session.rollback()
    finally:
        await session.close()
    return outcome.thanks, state


@pytest.mark.parametrize("situation", TAKEN, ids=lambda setup: setup.__name__)
async def test_the_fast_path_stores_what_the_full_path_stores(
    db: Database, clock: FakeClock, settings: Settings, library: Library, situation: Setup
) -> None:
    """An answer in words in an everyday situation: the fast path stores the same reply against
    the same prompt, leaves the prompt in the same state and says the same thanks as the full
    path."""
    client_id = await active_client(db, clock, settings, library, program=None, telegram_id=USER)
    reply_to = await situation(db, clock, library, client_id)
    answered, quick_state = await _quickly(db, clock, client_id, reply_to)
    thanks, full_state = await _fully(db, clock, client_id, reply_to)
    assert answered is not None
    assert answered.thanks == thanks
    assert answered.language == "en"
    assert quick_state == full_state
    assert quick_state["replies"][-1][3] == WORDS


@pytest.mark.parametrize("situation", LEFT_TO_THE_FULL_PATH, ids=lambda setup: setup.__name__)
async def test_the_fast_path_leaves_the_rest_to_the_full_path_and_writes_nothing(
    db: Database, clock: FakeClock, settings: Settings, library: Library, situation: Setup
) -> None:
    """Anything but the everyday answer (a stopped or unreachable client, a setting being typed,
    a multi-step prompt, a questionnaire, a paired prompt, a message stored before) is declined
    with nothing written."""
    client_id = await active_client(db, clock, settings, library, program=None, telegram_id=USER)
    reply_to = await situation(db, clock, library, client_id)
    async with db.engine.connect() as connection:
        before = await _state(connection, client_id)
        await connection.rollback()
    answered, after = await _quickly(db, clock, client_id, reply_to)
    assert answered is None
    assert after == before


async def test_someone_never_invited_is_left_to_the_full_path(db: Database, clock: FakeClock) -> None:
    """A stranger's words are declined (the full path tells them they are not invited)."""
    async with db.engine.connect() as connection:
        answered = await replies.store_words(connection, clock.now(), telegram_user_id=USER,
                                             message_id=MESSAGE, text=WORDS,
                                             reply_to_message_id=None)
        await connection.rollback()
    assert answered is None


async def test_the_thanks_for_more_words_after_a_first_answer(
    db: Database, clock: FakeClock, settings: Settings, library: Library
) -> None:
    """Two answers in a row to one prompt: thanked for the words, then for adding more; both
    kept with the prompt, which is answered once."""
    client_id = await active_client(db, clock, settings, library, program=None, telegram_id=USER)
    delivery = await _prompt(db, clock, library, client_id, "grounding.slow-exhale",
                             message_id=PROMPT_MESSAGE)
    said = []
    for message_id in (801, 802):
        said.append(await db.together(lambda connection, message_id=message_id:
                                      replies.store_words(
                                          connection, clock.now(), telegram_user_id=USER,
                                          message_id=message_id, text=WORDS,
                                          reply_to_message_id=None)))
    assert [answer.thanks if answer else None for answer in said] == [
        messages.THANKS_WORDS, messages.THANKS_MORE_WORDS]
    async with db.transaction() as session:
        stored = (await session.scalars(select(Reply.delivery_id).where(
            Reply.client_id == client_id))).all()
        prompt = await session.get(Delivery, delivery)
    assert stored == [delivery, delivery]
    assert prompt is not None
    assert prompt.status is DeliveryStatus.ANSWERED
