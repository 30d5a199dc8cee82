"""Answers to prompts: check-in and answer buttons, words, voice notes and edits.

Each handler stores first and speaks after the commit, so a crash between the two is repaired
by the inbox replaying the update: the store is idempotent, and the thanks is said again.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import TelegramError

from bot import messages
from bot.db.models import Client, ClientStatus, NervousSystemState
from bot.handlers.common import button_press, current_client, replied_to, say, welcome, writer
from bot.handlers.context import InterludeContext
from bot.handlers.couples import ask_share
from bot.handlers.crisis import respond_to_checkin_pattern, respond_to_crisis, send_pair_held_alerts
from bot.handlers.keyboards import STATE_LABELS, intensity_keyboard, parse_ints, question_message
from bot.handlers.onboarding import typed_setting
from bot.handlers.questionnaires import show_where_they_were
from bot.messages import render
from bot.services import couples, questionnaires, replies
from bot.services.onboarding import client_by_telegram
from bot.services.replies import Outcome

log = logging.getLogger(__name__)


async def checkin_button(update: Update, context: InterludeContext) -> None:
    """A check-in state, then an intensity; the message updates to show the choice."""
    pressed = await button_press(update, context)
    if pressed is None:
        return
    query, data, client = pressed
    services = context.services
    _, raw_id, part, raw_value = [*data.split(":"), "", "", ""][:4]
    numbers = parse_ints([raw_id])
    state = NervousSystemState(raw_value) if raw_value in NervousSystemState._value2member_map_ \
        else None
    intensity = parse_ints([raw_value]) if part == "i" else None
    if numbers is None or (part == "s" and state is None) or (part == "i" and intensity is None) \
            or part not in ("s", "i"):
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, client.language_code))
        return
    async with services.db.transaction() as session:
        outcome = await replies.record_checkin(
            session, client, services.clock, delivery_id=numbers[0],
            state=state if part == "s" else None,
            intensity=intensity[0] if intensity else None)
        checkin = await replies.checkin_for(session, numbers[0]) if outcome.stored else None
    if not await _answer_query(update, context, client, outcome):
        return
    assert outcome.delivery is not None and checkin is not None and checkin.state is not None
    language = client.language_code
    chosen_state = render(STATE_LABELS[checkin.state], language)
    prompt_text = outcome.delivery.prompt["text"]
    if part == "s":
        text = "\n\n".join((prompt_text, render(messages.CHECKIN_STATE_CHOSEN, language,
                                                state=chosen_state),
                            render(messages.CHECKIN_INTENSITY, language)))
        await query.edit_message_text(text, reply_markup=intensity_keyboard(outcome.delivery.id))
        return
    text = "\n\n".join((prompt_text, render(messages.CHECKIN_INTENSITY_CHOSEN, language,
                                            state=chosen_state, intensity=checkin.intensity)))
    await query.edit_message_text(text, reply_markup=None)
    if await respond_to_checkin_pattern(update, context, client):
        return
    if outcome.thanks:
        await say(update, context, outcome.thanks, language=language)


async def answer_button(update: Update, context: InterludeContext) -> None:
    """A choice or a number on a prompt's buttons."""
    pressed = await button_press(update, context)
    if pressed is None:
        return
    query, data, client = pressed
    services = context.services
    numbers = parse_ints(data.split(":")[1:])
    if numbers is None or len(numbers) != 3:
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, client.language_code))
        return
    delivery_id, question, option = numbers
    async with services.db.transaction() as session:
        outcome = await replies.record_button(session, client, services.clock,
                                              delivery_id=delivery_id, question=question,
                                              option=option)
        paired = await _paired(session, context, client, outcome)
    if not await _answer_query(update, context, client, outcome):
        return
    await query.edit_message_reply_markup(reply_markup=None)
    await _follow_up(update, context, client, outcome, paired,
                     value=_chosen_label(outcome, question, option))


def _chosen_label(outcome: Outcome, question: int, option: int) -> str:
    assert outcome.delivery is not None
    spec = outcome.delivery.prompt
    if spec.get("steps"):
        spec = spec["steps"][question]
    choices = spec.get("choices") or []
    return str(choices[option]) if choices else str(option)


async def _answer_query(update: Update, context: InterludeContext, client: Client,
                        outcome: Outcome) -> bool:
    """Answer the button press; False when nothing more should happen."""
    query = update.callback_query
    assert query is not None
    language = client.language_code
    if outcome.foreign:
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, language))
        return False
    if outcome.closed:
        await query.answer(render(messages.PROMPT_CLOSED, language))
        if query.message is not None and getattr(query.message, "reply_markup", None):
            await query.edit_message_reply_markup(reply_markup=None)
        return False
    await query.answer()
    return True


# The thanks that mark a first (or final) answer: a paired one then gets the share question.
FIRST_ANSWER_THANKS = (messages.THANKS_WORDS, messages.THANKS_VOICE, messages.THANKS_CHOICE,
                       messages.STEPS_DONE)


async def _paired(session: AsyncSession, context: InterludeContext, client: Client,
                  outcome: Outcome) -> couples.AfterAnswer:
    """For an answer to a paired prompt: settle the pair, and whether to ask about sharing."""
    if not outcome.stored:
        return couples.AfterAnswer()
    services = context.services
    return await couples.after_answer(session, client, outcome.delivery, services.clock,
                                      services.screener,
                                      just_answered=outcome.thanks in FIRST_ANSWER_THANKS)


async def _follow_up(update: Update, context: InterludeContext, client: Client, outcome: Outcome,
                     paired: couples.AfterAnswer | None = None, **values: object) -> None:
    """Thank the client, ask the next question of a multi-step prompt, or ask about sharing."""
    language = client.language_code
    if paired is not None:
        await send_pair_held_alerts(context.bot, context.services, paired.alerts)
    if paired is not None and paired.share is not None:
        await ask_share(update, context, client, paired.share)
    elif outcome.delivery is not None and questionnaires.is_questionnaire(outcome.delivery.prompt) \
            and outcome.thanks is not None:
        # Words during a questionnaire are kept for the therapist; the client is shown where
        # they were, so the buttons are at hand again.
        await say(update, context, outcome.thanks, language=language, **values)
        await show_where_they_were(update, context, client, outcome.delivery.id)
    elif outcome.next_question is not None and outcome.delivery is not None:
        rendered = question_message(outcome.delivery.id, outcome.delivery.prompt,
                                    outcome.next_question, language)
        chat = update.effective_chat
        assert chat is not None
        await context.bot.send_message(chat.id, rendered.text, reply_markup=rendered.keyboard)
    elif outcome.thanks:
        await say(update, context, outcome.thanks, language=language, **values)


async def words(update: Update, context: InterludeContext) -> None:
    """Typed words: a setting the bot is waiting for, or an answer to the open prompt."""
    message, services = update.effective_message, context.services
    assert message is not None and message.text is not None
    if await respond_to_crisis(update, context, message, message.text):
        return
    user = update.effective_user
    assert user is not None
    # The common case, an answer to an ordinary prompt, is stored in a few statements and a
    # commit shared with other people's answers of the same moment; the thanks follows it.
    answered = await services.db.together(partial(
        replies.store_words, now=services.clock.now(), telegram_user_id=user.id,
        message_id=message.message_id, text=message.text, reply_to_message_id=replied_to(message)))
    if answered is not None:
        await say(update, context, answered.thanks, language=answered.language)
        return
    # Everything else: who is writing, and their answer stored, in one transaction.
    outcome = paired = None
    async with services.db.transaction() as session:
        client = await writer(session, user.id)
        if client is not None and client.status is not ClientStatus.STOPPED \
                and not client.awaiting:
            outcome = await replies.record_message(
                session, client, services.clock, message_id=message.message_id,
                text=message.text, reply_to_message_id=replied_to(message))
            paired = await _paired(session, context, client, outcome)
    if not await welcome(update, context, client):
        return
    assert client is not None
    if outcome is None:  # the bot waits for a setting typed in words
        await typed_setting(update, context, client, message.text)
        return
    await _follow_up(update, context, client, outcome, paired)


async def voice(update: Update, context: InterludeContext) -> None:
    """A voice note: kept with the prompt it answers, its sound downloaded and stored."""
    message, services = update.effective_message, context.services
    assert message is not None and message.voice is not None
    # The caption is screened first; the voice note itself is kept either way.
    crisis = await respond_to_crisis(update, context, message, message.caption, keep=False)
    client = await current_client(update, context)
    if client is None:
        return
    note = message.voice
    async with services.db.transaction() as session:
        outcome = await replies.record_message(
            session, client, services.clock, message_id=message.message_id,
            voice_file_id=note.file_id, voice_duration=int(note.duration.total_seconds()),
            reply_to_message_id=replied_to(message))
        paired = await _paired(session, context, client, outcome)
    try:
        file = await context.bot.get_file(note.file_id)
        content = bytes(await file.download_as_bytearray())
    except TelegramError as error:
        # The file id is kept; the sound can be fetched again later.
        log.warning("voice note download failed (%s)", type(error).__name__)
    else:
        async with services.db.transaction() as session:
            await replies.store_voice_content(session, client, message.message_id, content,
                                              note.mime_type or "audio/ogg")
    if not crisis:
        await _follow_up(update, context, client, outcome, paired)


async def edited(update: Update, context: InterludeContext) -> None:
    """An edited message updates the stored answer; the earlier words are kept as history."""
    message, services = update.edited_message, context.services
    if message is None or message.text is None or message.from_user is None:
        return
    after_reveal = None
    async with services.db.transaction() as session:
        client = await client_by_telegram(session, message.from_user.id)
        if client is not None and client.status is not ClientStatus.STOPPED and \
                await replies.record_edit(session, client, services.clock,
                                          message_id=message.message_id, text=message.text):
            # A revealed answer is never changed in the partner's chat: the edit is kept for
            # the therapist, and its author is told so.
            after_reveal = await couples.edited_after_reveal(session, client, message.message_id)
    if await respond_to_crisis(update, context, message, message.text, keep=False):
        return
    if after_reveal is not None and client is not None:
        await say(update, context, messages.EDITED_AFTER_REVEAL, language=client.language_code,
                  partner=after_reveal.partner_name, therapist=after_reveal.therapist_name)
