"""python-telegram-bot against the emulator over real HTTP: the calls the bot makes."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, Conflict

from bot.emulator import EmulatorControl
from bot.emulator.botapi import BotApiSpec

from .conftest import BOT_ID, ApiCall, started_user, until_called

KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Grounded", callback_data="state:grounded")],
        [InlineKeyboardButton("Activated", callback_data="state:activated")],
    ]
)


async def test_get_me_reports_the_bot_named_by_its_token(ptb_bot: Bot) -> None:
    """getMe answers with the bot whose id is the token's number and the configured username."""
    me = await ptb_bot.get_me()
    assert me.id == BOT_ID
    assert me.is_bot
    assert me.first_name == "Interlude"
    assert me.username == "InterludeDemoBot"


async def test_a_button_press_reaches_ptb_as_a_callback_query(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """A press on a button the bot sent arrives through getUpdates as that button's data."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Where are you right now?", reply_markup=KEYBOARD)
    assert sent.reply_markup == KEYBOARD

    pressed = await telegram.press(alice, sent.message_id, button_text="Activated")
    updates = await ptb_bot.get_updates()
    query = updates[-1].callback_query

    assert query is not None
    assert query.id == pressed["callback_query_id"]
    assert updates[-1].update_id == pressed["update_id"]
    assert query.data == "state:activated"
    assert query.from_user.id == alice
    assert query.message is not None
    assert query.message.message_id == sent.message_id


async def test_offset_confirms_and_drops_earlier_updates(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """getUpdates with an offset forgets every update before it, for good."""
    alice = await telegram.create_user("Alice")
    for text in ("one", "two", "three"):
        await telegram.send_text(alice, text)

    first = await ptb_bot.get_updates()
    assert [u.message.text for u in first if u.message] == ["one", "two", "three"]

    rest = await ptb_bot.get_updates(offset=first[1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert [u.message.text for u in await ptb_bot.get_updates() if u.message] == ["three"]

    assert await ptb_bot.get_updates(offset=first[-1].update_id + 1) == ()
    assert (await telegram.stats())["pending_updates"] == 0


async def test_limit_caps_the_batch(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """getUpdates returns at most `limit` updates, oldest first."""
    alice = await telegram.create_user("Alice")
    for number in range(5):
        await telegram.send_text(alice, f"message {number}")

    batch = await ptb_bot.get_updates(limit=2)
    assert [u.message.text for u in batch if u.message] == ["message 0", "message 1"]


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """A getUpdates waiting with a long timeout wakes the moment a person writes."""
    alice = await telegram.create_user("Alice")
    started = time.monotonic()
    polling = asyncio.create_task(ptb_bot.get_updates(timeout=20))
    await until_called(telegram, "getUpdates")
    assert not polling.done()

    await telegram.send_text(alice, "hello")
    updates = await asyncio.wait_for(polling, 5)

    assert [u.message.text for u in updates if u.message] == ["hello"]
    assert time.monotonic() - started < 2


async def test_a_second_poll_ends_the_waiting_one_with_conflict(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """Two getUpdates at once answer the older one 409, as Telegram does for two bot copies."""
    waiting = asyncio.create_task(ptb_bot.get_updates(timeout=20))
    await until_called(telegram, "getUpdates")
    assert await ptb_bot.get_updates() == ()
    with pytest.raises(Conflict):
        await asyncio.wait_for(waiting, 5)


async def test_allowed_updates_leave_out_other_kinds(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """After getUpdates(allowed_updates=["message"]) button presses are not delivered."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Pick one", reply_markup=KEYBOARD)
    confirmed = await ptb_bot.get_updates(allowed_updates=["message"])

    await telegram.press(alice, sent.message_id, callback_data="state:grounded")
    await telegram.send_text(alice, "typed instead")
    updates = await ptb_bot.get_updates(offset=confirmed[-1].update_id + 1)

    assert [u.message.text for u in updates if u.message] == ["typed instead"]
    assert all(u.callback_query is None for u in updates)


async def test_edit_message_text_changes_the_message_and_drops_an_unrepeated_keyboard(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """editMessageText replaces the stored text, sets edit_date, and removes the keyboard."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Where are you right now?", reply_markup=KEYBOARD)

    edited = await ptb_bot.edit_message_text("Thank you.", chat_id=alice, message_id=sent.message_id)

    assert not isinstance(edited, bool)
    assert edited.text == "Thank you."
    stored = (await telegram.bot_messages(alice))[-1]
    assert stored["message_id"] == sent.message_id
    assert stored["text"] == "Thank you."
    assert "edit_date" in stored
    assert "reply_markup" not in stored


async def test_an_edit_that_changes_nothing_is_refused(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """Editing to the same text and keyboard is refused with "message is not modified"."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Same", reply_markup=KEYBOARD)

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb_bot.edit_message_text(
            "Same", chat_id=alice, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb_bot.edit_message_reply_markup(
            chat_id=alice, message_id=sent.message_id, reply_markup=KEYBOARD
        )


async def test_edit_reply_markup_removes_the_keyboard(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """editMessageReplyMarkup without a keyboard takes the buttons off the message."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Pick one", reply_markup=KEYBOARD)

    await ptb_bot.edit_message_reply_markup(chat_id=alice, message_id=sent.message_id)

    stored = (await telegram.bot_messages(alice))[-1]
    assert "reply_markup" not in stored
    assert stored["text"] == "Pick one"


async def test_editing_a_message_that_is_not_there_is_refused(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """An edit must name a bot message that exists in that chat."""
    alice = await started_user(telegram)
    users_message = (await telegram.transcript(alice))[0]["message_id"]

    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await ptb_bot.edit_message_text("x", chat_id=alice, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await ptb_bot.edit_message_text("x", chat_id=alice, message_id=users_message)


async def test_answering_a_callback_query_is_recorded_once(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """answerCallbackQuery is recorded for the person; answering again or an unknown id is refused."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, "Pick one", reply_markup=KEYBOARD)
    pressed = await telegram.press(alice, sent.message_id, callback_data="state:grounded")

    assert await ptb_bot.answer_callback_query(pressed["callback_query_id"], text="Noted.")

    answers = await telegram.callback_answers(alice)
    assert answers == [
        {
            "callback_query_id": pressed["callback_query_id"],
            "message_id": sent.message_id,
            "text": "Noted.",
            "show_alert": False,
            "url": None,
            "cache_time": 0,
        }
    ]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await ptb_bot.answer_callback_query(pressed["callback_query_id"])
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await ptb_bot.answer_callback_query("12345")


async def test_a_voice_note_downloads_the_same_bytes_each_time(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """getFile and the file URL give a voice note's bytes, identical on every download."""
    alice = await telegram.create_user("Alice")
    await telegram.send_voice(alice, 7)
    voice = (await ptb_bot.get_updates())[-1].message.voice
    assert voice is not None

    file = await ptb_bot.get_file(voice.file_id)
    first, second = io.BytesIO(), io.BytesIO()
    await file.download_to_memory(first)
    await (await ptb_bot.get_file(voice.file_id)).download_to_memory(second)

    assert first.getvalue() == second.getvalue()
    assert len(first.getvalue()) == file.file_size == voice.file_size
    assert first.getvalue().startswith(b"OggS")
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await ptb_bot.get_file("no-such-file")


async def test_replies_quote_the_message_they_answer(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """reply_parameters and the older reply_to_message_id both make a quoted reply."""
    alice = await telegram.create_user("Alice")
    said = await telegram.send_text(alice, "I felt calmer today")

    by_parameters = await ptb_bot.send_message(
        alice, "Thank you", reply_parameters=ReplyParameters(said["message_id"])
    )
    by_old_parameter = await ptb_bot.send_message(alice, "Noted", reply_to_message_id=said["message_id"])

    for reply in (by_parameters, by_old_parameter):
        assert reply.reply_to_message is not None
        assert reply.reply_to_message.text == "I felt calmer today"
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await ptb_bot.send_message(alice, "x", reply_parameters=ReplyParameters(999))
    missing_is_fine = await ptb_bot.send_message(
        alice, "x", reply_parameters=ReplyParameters(999, allow_sending_without_reply=True)
    )
    assert missing_is_fine.reply_to_message is None


async def test_html_becomes_entities(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """parse_mode HTML is parsed into plain text and entities, which PTB turns back into HTML."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(
        alice,
        "<b>Breathe</b> in &amp; <i>out</i> 🌿 <a href='https://example.org/'>more</a>",
        parse_mode="HTML",
    )
    assert sent.text == "Breathe in & out 🌿 more"
    assert sent.text_html == ('<b>Breathe</b> in &amp; <i>out</i> 🌿 <a href="https://example.org/">more</a>')


async def test_chat_action_shows_typing_in_the_chat(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """sendChatAction marks the chat as typing until the bot's next message."""
    alice = await started_user(telegram)
    assert await ptb_bot.send_chat_action(alice, "typing")
    assert (await telegram.chat(alice))["action"] == "typing"

    await ptb_bot.send_message(alice, "Here I am")
    assert (await telegram.chat(alice))["action"] is None
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await ptb_bot.send_chat_action(alice, "dancing")


async def test_commands_are_set_read_and_deleted(ptb_bot: Bot) -> None:
    """setMyCommands stores the menu per scope and language; getMyCommands and deleteMyCommands follow."""
    assert await ptb_bot.set_my_commands([("pause", "Pause prompts"), ("stop", "Stop")])
    assert await ptb_bot.set_my_commands([("pause", "Pausieren")], language_code="de")

    assert [(c.command, c.description) for c in await ptb_bot.get_my_commands()] == [
        ("pause", "Pause prompts"),
        ("stop", "Stop"),
    ]
    assert [c.command for c in await ptb_bot.get_my_commands(language_code="de")] == ["pause"]
    assert await ptb_bot.delete_my_commands()
    assert await ptb_bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await ptb_bot.set_my_commands([("Not A Command", "x")])


async def test_every_call_in_a_round_trip_is_valid_and_every_answer_fits_the_spec(
    ptb_bot: Bot, telegram: EmulatorControl, api_calls: list[ApiCall], spec: BotApiSpec
) -> None:
    """Each request PTB makes in a full round trip passes the spec check, and each result
    carries every field the spec marks required for its type."""
    alice = await started_user(telegram)
    await ptb_bot.set_my_commands([("start", "Begin"), ("pause", "Pause prompts")])
    await ptb_bot.get_my_commands()
    updates = await ptb_bot.get_updates()
    await ptb_bot.send_chat_action(alice, "typing")
    sent = await ptb_bot.send_message(
        alice,
        "<b>How are you arriving?</b>",
        parse_mode="HTML",
        reply_markup=KEYBOARD,
        reply_parameters=ReplyParameters(updates[-1].message.message_id),
    )
    pressed = await telegram.press(alice, sent.message_id, button_text="Grounded")
    await telegram.send_voice(alice, 4)
    await telegram.edit(alice, updates[-1].message.message_id, "/start again")
    await telegram.block(alice)
    await telegram.unblock(alice)
    updates = await ptb_bot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
    await ptb_bot.answer_callback_query(pressed["callback_query_id"], text="Thanks")
    await ptb_bot.edit_message_text("Thanks.", chat_id=alice, message_id=sent.message_id)
    await ptb_bot.edit_message_reply_markup(alice, sent.message_id, reply_markup=KEYBOARD)
    voice = next(u.message.voice for u in updates if u.message and u.message.voice)
    await ptb_bot.get_file(voice.file_id)
    await ptb_bot.get_webhook_info()
    await ptb_bot.delete_webhook()
    await ptb_bot.delete_my_commands()

    assert {call.method for call in api_calls} >= {
        "getMe", "setMyCommands", "getMyCommands", "getUpdates", "sendChatAction",
        "sendMessage", "answerCallbackQuery", "editMessageText", "editMessageReplyMarkup",
        "getFile", "getWebhookInfo", "deleteWebhook", "deleteMyCommands",
    }  # fmt: skip
    kinds = {kind for u in updates for kind in u.to_dict() if kind != "update_id"}
    assert kinds == {"callback_query", "message", "edited_message", "my_chat_member"}
    for call in api_calls:
        assert call.status == 200, (call.method, call.body)
        assert call.body["ok"] is True
        assert spec.check_result(call.method, call.body["result"]) == [], call.method
    assert (await telegram.stats())["errors"] == {}
