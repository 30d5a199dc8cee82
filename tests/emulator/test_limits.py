"""Telegram's limits and refusals, as python-telegram-bot sees them from the emulator."""

from __future__ import annotations

import time

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.emulator import EmulatorControl

from .conftest import retry_seconds, started_user

# PTB 22 warns about RetryAfter.retry_after becoming a timedelta when it builds the
# exception itself; that is PTB's notice to its users, not something under test here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def keyboard_with(callback_data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data=callback_data)]])


async def test_over_the_global_rate_the_bot_gets_retry_after(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """Past the whole-bot burst a send is refused with 429 and a whole-second retry_after."""
    people = [await started_user(telegram, name) for name in ("Ann", "Ben", "Cal")]
    await telegram.configure(rate_limits=True, global_rate=0.1, global_burst=2, chat_rate=100, chat_burst=100)
    await ptb_bot.send_message(people[0], "one")
    await ptb_bot.send_message(people[1], "two")

    with pytest.raises(RetryAfter) as refused:
        await ptb_bot.send_message(people[2], "three")

    # One token comes back every 10 s; rounded up to whole seconds, as Telegram does.
    assert retry_seconds(refused.value) in (9, 10)
    stats = await telegram.stats()
    assert stats["rate_limited"] == 1
    assert stats["errors"] == {"429": 1}
    assert stats["delivered"] == {str(people[0]): 1, str(people[1]): 1}


async def test_over_the_per_chat_rate_only_that_chat_waits(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """A chat's burst of three is refused on the fourth; another chat still gets its message."""
    alice = await started_user(telegram, "Alice")
    bob = await started_user(telegram, "Bob")
    # A slow rate, so no token comes back while the test runs even on a busy machine.
    await telegram.configure(rate_limits=True, chat_rate=0.1, chat_burst=3)
    for number in range(3):
        await ptb_bot.send_message(alice, f"prompt {number}")

    with pytest.raises(RetryAfter) as refused:
        await ptb_bot.send_message(alice, "one too many")
    await ptb_bot.send_message(bob, "you are fine")

    assert retry_seconds(refused.value) >= 1
    assert (await telegram.stats())["rate_limited"] == 1


async def test_edits_count_but_chat_actions_and_callback_answers_do_not(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """Edits use up the chat's allowance; typing and answering button presses never do."""
    alice = await started_user(telegram)
    await telegram.configure(rate_limits=True, chat_rate=0.1, chat_burst=2)
    sent = await ptb_bot.send_message(alice, "Pick", reply_markup=keyboard_with("a"))
    for _ in range(3):
        assert await ptb_bot.send_chat_action(alice, "typing")
        pressed = await telegram.press(alice, sent.message_id, callback_data="a")
        assert await ptb_bot.answer_callback_query(pressed["callback_query_id"])
    await ptb_bot.edit_message_text("Picked", chat_id=alice, message_id=sent.message_id)

    with pytest.raises(RetryAfter):
        await ptb_bot.send_message(alice, "third message")


async def test_turning_rate_limits_off_lets_everything_through(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """With rate_limits false a burst far past the limits is delivered whole."""
    alice = await started_user(telegram)
    await telegram.configure(rate_limits=False, chat_burst=1, global_burst=1)
    for number in range(10):
        await ptb_bot.send_message(alice, f"message {number}")
    assert (await telegram.stats())["delivered"] == {str(alice): 10}


async def test_a_person_who_blocked_the_bot_cannot_be_messaged(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """After a block, sends are refused 403 and the bot is told by a my_chat_member update."""
    alice = await started_user(telegram)
    await telegram.block(alice)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await ptb_bot.send_message(alice, "Are you there?")
    member_update = (await ptb_bot.get_updates())[-1].my_chat_member
    assert member_update is not None
    assert member_update.new_chat_member.status == "kicked"

    await telegram.unblock(alice)
    assert (await ptb_bot.send_message(alice, "Welcome back")).text == "Welcome back"


async def test_the_bot_cannot_write_first(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """A person who never wrote to the bot cannot be messaged, as on Telegram."""
    stranger = await telegram.create_user("Stranger")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await ptb_bot.send_message(stranger, "Hello?")


async def test_an_unknown_chat_is_not_found(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """Sending to a chat id the emulator has never seen is refused with "chat not found"."""
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await ptb_bot.send_message(424242, "Hello?")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await ptb_bot.send_message("@nobody", "Hello?")


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("a" * 4096, None),
        ("😀" * 2048, None),  # 2048 emoji are 4096 UTF-16 units
        ("é" * 4096, None),  # 8192 UTF-8 bytes, but 4096 units
        ("<b>" + "a" * 4096 + "</b>", "HTML"),  # tags do not count
        ("&amp;" * 4096, "HTML"),  # an entity counts as the one character it stands for
    ],
    ids=["ascii", "emoji", "accented", "html-tags", "html-entities"],
)
async def test_exactly_4096_units_are_accepted(
    ptb_bot: Bot, telegram: EmulatorControl, text: str, parse_mode: str | None
) -> None:
    """A text of exactly 4096 UTF-16 code units after entity parsing is delivered."""
    alice = await started_user(telegram)
    sent = await ptb_bot.send_message(alice, text, parse_mode=parse_mode)
    assert len(sent.text.encode("utf-16-le")) // 2 == 4096


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("a" * 4097, None),
        ("😀" * 2048 + "a", None),
        ("a" * 4095 + "😀", None),  # 4095 characters, but 4097 units
        ("<b>" + "a" * 4097 + "</b>", "HTML"),
    ],
    ids=["ascii", "emoji-plus-one", "emoji-at-the-end", "html"],
)
async def test_more_than_4096_units_are_refused(
    ptb_bot: Bot, telegram: EmulatorControl, text: str, parse_mode: str | None
) -> None:
    """A text over 4096 UTF-16 code units is refused with "message is too long"."""
    alice = await started_user(telegram)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await ptb_bot.send_message(alice, text, parse_mode=parse_mode)


async def test_empty_text_is_refused(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """Whitespace only, or HTML that parses to nothing, is "message text is empty"."""
    alice = await started_user(telegram)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await ptb_bot.send_message(alice, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await ptb_bot.send_message(alice, "<b></b>", parse_mode="HTML")


@pytest.mark.parametrize(
    "html",
    ["<b>never closed", "<b>crossed <i>tags</b></i>", "1 < 2", "<blink>old</blink>", "</i>"],
)
async def test_malformed_html_is_refused(ptb_bot: Bot, telegram: EmulatorControl, html: str) -> None:
    """HTML Telegram cannot parse is refused with "can't parse entities"."""
    alice = await started_user(telegram)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await ptb_bot.send_message(alice, html, parse_mode="HTML")


@pytest.mark.parametrize("callback_data", ["x" * 65, "é" * 33, ""], ids=["65-ascii", "66-bytes", "empty"])
async def test_callback_data_must_be_1_to_64_bytes(
    ptb_bot: Bot, telegram: EmulatorControl, callback_data: str
) -> None:
    """callback_data longer than 64 UTF-8 bytes, or empty, is BUTTON_DATA_INVALID."""
    alice = await started_user(telegram)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await ptb_bot.send_message(alice, "Pick", reply_markup=keyboard_with(callback_data))


async def test_callback_data_of_64_bytes_is_accepted(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """64 bytes of callback_data, multi-byte characters included, are within the limit."""
    alice = await started_user(telegram)
    for data in ("x" * 64, "é" * 32):
        sent = await ptb_bot.send_message(alice, "Pick", reply_markup=keyboard_with(data))
        assert sent.reply_markup.inline_keyboard[0][0].callback_data == data


async def test_injected_faults_answer_bad_gateway(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """With fail_ratio 1 every Bot API call is answered 502, and counted."""
    alice = await started_user(telegram)
    await telegram.configure(fail_ratio=1.0)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await ptb_bot.send_message(alice, "lost")

    await telegram.configure(fail_ratio=0.0)
    await ptb_bot.send_message(alice, "delivered")
    stats = await telegram.stats()
    assert stats["errors"] == {"502": 1}
    assert stats["delivered"] == {str(alice): 1}


async def test_injected_latency_slows_every_call(ptb_bot: Bot, telegram: EmulatorControl) -> None:
    """latency_ms delays each Bot API answer by at least that long."""
    await telegram.configure(latency_ms=150)
    started = time.monotonic()
    await ptb_bot.get_me()
    assert time.monotonic() - started >= 0.15
