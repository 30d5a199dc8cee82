"""The control API: playing the people on the Telegram side and reading what the bot did."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from bot.emulator import EmulatorControl, EmulatorError, EmulatorThread

from .conftest import BOT_ID, TOKEN, started_user

KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Yes", callback_data="consent:yes")],
        [InlineKeyboardButton("Read it", url="https://example.org/consent")],
    ]
)


async def test_people_get_ids_from_10001_unless_they_bring_one(telegram: EmulatorControl) -> None:
    """Ids are given out from 10001 upward; a chosen id is kept, and a taken one refused."""
    first = await telegram.create_user("Ann")
    second = await telegram.create_user("Ben", language_code="de")
    chosen = await telegram.create_user("Cal", id=777)

    assert (first, second, chosen) == (10001, 10002, 777)
    people = await telegram.users()
    assert [(p["id"], p["first_name"], p["language_code"]) for p in people] == [
        (10001, "Ann", None),
        (10002, "Ben", "de"),
        (777, "Cal", None),
    ]
    with pytest.raises(EmulatorError) as refused:
        await telegram.create_user("Again", id=777)
    assert refused.value.status == 409


async def test_the_transcript_holds_both_directions_in_order(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """The transcript lists every message as a Telegram Message, with from.is_bot telling who."""
    alice = await telegram.create_user("Alice")
    said = await telegram.send_text(alice, "/start invite-abc")
    reply = await ptb_bot.send_message(alice, "Welcome", reply_to_message_id=said["message_id"])
    await telegram.send_text(alice, "Thanks", reply_to=reply.message_id)

    transcript = await telegram.transcript(alice)

    assert [(m["from"]["is_bot"], m["text"]) for m in transcript] == [
        (False, "/start invite-abc"),
        (True, "Welcome"),
        (False, "Thanks"),
    ]
    assert [m["message_id"] for m in transcript] == [1, 2, 3]
    assert transcript[0]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert transcript[1]["from"]["id"] == BOT_ID
    assert transcript[1]["reply_to_message"]["text"] == "/start invite-abc"
    assert transcript[2]["reply_to_message"]["text"] == "Welcome"
    assert all(isinstance(m["date"], int) for m in transcript)
    assert [m["text"] for m in await telegram.bot_messages(alice)] == ["Welcome"]


async def test_a_bot_edit_changes_the_stored_message_in_place(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """After editMessageText the transcript shows the new text at the same place, with edit_date."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Before", reply_markup=KEYBOARD)
    await ptb_bot.edit_message_text("After", chat_id=alice, message_id=sent.message_id, reply_markup=KEYBOARD)

    transcript = await telegram.transcript(alice)
    assert len(transcript) == 2
    assert transcript[1]["text"] == "After"
    assert transcript[1]["edit_date"] >= transcript[1]["date"]
    assert transcript[1]["reply_markup"] == KEYBOARD.to_dict()


async def test_a_person_edit_reaches_the_bot_as_an_edited_message(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """Editing a message sends an edited_message update and changes the transcript."""
    alice = await telegram.create_user("Alice")
    said = await telegram.send_text(alice, "I feel 8 out of 10")
    edit = await telegram.edit(alice, said["message_id"], "I feel 6 out of 10")

    updates = await ptb_bot.get_updates()
    edited = updates[-1].edited_message
    assert updates[-1].update_id == edit["update_id"]
    assert edited is not None
    assert edited.message_id == said["message_id"]
    assert edited.text == "I feel 6 out of 10"
    assert edited.edit_date is not None
    assert (await telegram.transcript(alice))[0]["text"] == "I feel 6 out of 10"


async def test_a_press_on_a_button_that_is_not_there_needs_forge(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """A press the message does not offer is refused, unless forged; a forged one is delivered."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Consent?", reply_markup=KEYBOARD)

    with pytest.raises(EmulatorError) as refused:
        await telegram.press(alice, sent.message_id, callback_data="consent:admin")
    assert refused.value.status == 400
    with pytest.raises(EmulatorError):
        await telegram.press(alice, sent.message_id, button_text="No such button")
    with pytest.raises(EmulatorError):
        await telegram.press(alice, sent.message_id, button_text="Read it")  # a link, not data

    forged = await telegram.press(alice, sent.message_id, callback_data="consent:admin", forge=True)
    query = (await ptb_bot.get_updates())[-1].callback_query
    assert query is not None
    assert query.id == forged["callback_query_id"]
    assert query.data == "consent:admin"


async def test_people_write_in_groups(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """A message with a "chat" goes to that group, which the bot can then answer."""
    alice = await telegram.create_user("Alice")
    bob = await telegram.create_user("Bob")
    group = {"id": -100555, "type": "supergroup", "title": "Alice & Bob"}
    await telegram.send_text(alice, "/checkin", chat=group)
    await telegram.send_text(bob, "here too", chat=group)

    updates = await ptb_bot.get_updates()
    chats = {(u.message.chat.id, u.message.chat.type, u.message.chat.title) for u in updates}
    assert chats == {(-100555, "supergroup", "Alice & Bob")}
    assert [u.message.from_user.id for u in updates] == [alice, bob]

    await ptb_bot.send_message(-100555, "Hello both")
    transcript = await telegram.transcript(-100555)
    assert [m["text"] for m in transcript] == ["/checkin", "here too", "Hello both"]
    assert await telegram.transcript(alice) == []


async def test_other_kinds_of_message(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """Stickers, photos and locations arrive as Telegram shapes them."""
    alice = await telegram.create_user("Alice")
    await telegram.send(alice, sticker={})
    await telegram.send(alice, photo={})
    await telegram.send(alice, location={"latitude": 52.5, "longitude": 13.4})

    sticker, photo, location = (u.message for u in await ptb_bot.get_updates())
    assert sticker.sticker is not None
    assert sticker.sticker.width == 512
    assert len(photo.photo) == 2
    assert (location.location.latitude, location.location.longitude) == (52.5, 13.4)
    with pytest.raises(EmulatorError):
        await telegram.send(alice, location={"latitude": "north"})


async def test_injected_updates_arrive_as_given(emulator: EmulatorThread, telegram: EmulatorControl) -> None:
    """An injected update reaches getUpdates unchanged, with an update_id of the emulator's."""
    hostile = {"message": {"message_id": 1, "text": "<script>", "chat": {"id": 5}}}
    update_id = await telegram.inject(hostile)
    await telegram.inject({"update_id": 1, "poll": {"id": "x"}, "message": {"text": "two kinds"}})

    # Read raw: the point of a hostile update is that it need not parse.
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{emulator.url}/bot{TOKEN}/getUpdates")
    raw = answer.json()["result"]
    assert raw[0] == {"update_id": update_id, **hostile}
    assert raw[1]["update_id"] == update_id + 1
    assert raw[1]["poll"] == {"id": "x"}


async def test_blocking_shows_in_the_people_list_and_stops_sending(
    telegram: EmulatorControl,
) -> None:
    """A person who blocked the bot is marked blocked and cannot send until they unblock."""
    alice = await telegram.create_user("Alice")
    await telegram.block(alice)
    assert (await telegram.users())[0]["blocked"] is True
    with pytest.raises(EmulatorError) as refused:
        await telegram.send_text(alice, "hello")
    assert refused.value.status == 409

    await telegram.unblock(alice)
    await telegram.send_text(alice, "hello")
    assert (await telegram.chat(alice))["blocked"] is False


async def test_stats_count_calls_deliveries_and_errors(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """stats counts each method called, messages delivered per chat, and errors per code."""
    alice = await started_user(telegram)
    await ptb_bot.send_message(alice, "one")
    await ptb_bot.send_message(alice, "two")
    with pytest.raises(Exception, match=r"(?i)chat not found"):
        await ptb_bot.send_message(1, "nobody")

    stats = await telegram.stats()
    assert stats["methods"]["sendMessage"] == 3
    assert stats["methods"]["getMe"] == 1  # PTB's initialize()
    assert stats["delivered"] == {str(alice): 2}
    assert stats["errors"] == {"400": 1}
    assert stats["rate_limited"] == 0
    assert stats["pending_updates"] == 1  # the /start nobody read


async def test_reset_forgets_everything_and_restores_the_starting_settings(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """reset clears people, chats, updates and stats, and puts the settings back as started."""
    alice = await started_user(telegram)
    await ptb_bot.send_message(alice, "hi")
    before = await telegram.configure()
    changed = await telegram.configure(chat_burst=1, username="OtherBot", fail_ratio=0.5)
    assert changed["chat_burst"] == 1

    await telegram.reset()

    assert await telegram.users() == []
    with pytest.raises(EmulatorError) as missing:
        await telegram.transcript(alice)
    assert missing.value.status == 404
    stats = await telegram.stats()
    assert stats["pending_updates"] == 0
    assert stats["methods"] == {}
    assert await telegram.configure() == before
    assert await telegram.create_user("Again") == 10001


async def test_settings_are_checked(telegram: EmulatorControl) -> None:
    """Unknown settings and values of the wrong type are refused."""
    for bad in ({"nonsense": 1}, {"chat_rate": "fast"}, {"fail_ratio": 2}, {"rate_limits": 1}):
        with pytest.raises(EmulatorError) as refused:
            await telegram.configure(**bad)
        assert refused.value.status == 400


async def test_waiting_for_the_bot_returns_when_it_answers(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """wait_for_bot_messages returns once the bot's answer lands, without polling in a loop."""
    alice = await started_user(telegram)

    async def answer_soon() -> None:
        await asyncio.sleep(0.05)
        await ptb_bot.send_message(alice, "Here")

    answering = asyncio.create_task(answer_soon())
    messages = await telegram.wait_for_bot_messages(alice, 1, within=5)
    await answering
    assert [m["text"] for m in messages] == ["Here"]

    with pytest.raises(TimeoutError):
        await telegram.wait_for_bot_messages(alice, 2, within=0.1)


async def test_callback_answers_are_listed_per_person(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """The answers the bot gave to a person's presses are listed for that person only."""
    alice = await started_user(telegram, "Alice")
    bob = await started_user(telegram, "Bob")
    sent = await ptb_bot.send_message(alice, "Consent?", reply_markup=KEYBOARD)
    pressed = await telegram.press(alice, sent.message_id, button_text="Yes")
    await ptb_bot.answer_callback_query(pressed["callback_query_id"], text="Thank you", show_alert=True)

    answers = await telegram.callback_answers(alice)
    assert [(a["text"], a["show_alert"]) for a in answers] == [("Thank you", True)]
    assert await telegram.callback_answers(bob) == []
