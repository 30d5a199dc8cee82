"""Couples on Telegram: agreeing to paired prompts, share choices, /uncouple, and a therapist's /couple.

```mermaid
flowchart LR
    link["/couple a b (therapist) or interlude couple link"] --> ask{each partner, own chat}
    ask -->|Not now| ended[couple ends; nothing passed on]
    ask -->|Yes, usually share / keep| wait[waiting for the other]
    wait -->|other agrees| active[paired prompts planned]
    active --> answer[answer] --> choice{share with my partner / keep}
    choice --> reveal[both answered and chosen: each sees what the other shared]
```

Everything the other partner is told goes through the outbox (services/couples.py), so their
quiet hours hold it back; what the person pressing is told is said here, at once.
"""

from __future__ import annotations

from sqlalchemy import select
from telegram import CallbackQuery, Update

from bot import messages
from bot.db.models import Client, ClientStatus, Therapist
from bot.handlers.common import button_press, client_for_update, current_client, drop_keyboard, say
from bot.handlers.context import InterludeContext
from bot.handlers.crisis import send_pair_held_alerts
from bot.handlers.fallback import unknown_command
from bot.handlers.keyboards import buttons, parse_ints, prompt_message, question_message
from bot.messages import render
from bot.services import couples
from bot.services.couples import (
    PairingAnswer,
    ShareAnswer,
    ShareQuestion,
)


async def _couple_button(update: Update, context: InterludeContext,
                         choices: tuple[str, ...] | None = None,
                         ) -> tuple[CallbackQuery, Client, int, str] | None:
    """A pressed `prefix:<id>:<choice>` button as (query, client, id, choice).

    None when there is nothing more to do: no client, or data we never send (answered so).
    """
    pressed = await button_press(update, context)
    if pressed is None:
        return None
    query, data, client = pressed
    parts = data.split(":")
    numbers = parse_ints(parts[1:2])
    if numbers is None or len(parts) != 3 or (choices is not None and parts[2] not in choices):
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, client.language_code))
        return None
    return query, client, numbers[0], parts[2]


async def _take_press(update: Update, query: CallbackQuery, language: str | None, *,
                      foreign: bool) -> bool:
    """Answer a press the service has looked at; False when it was not this person's to press.

    Otherwise its buttons come off, so the same choice is not pressed again.
    """
    if foreign:
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, language))
        return False
    await query.answer()
    await drop_keyboard(update)
    return True


async def pairing_button(update: Update, context: InterludeContext) -> None:
    """A partner agrees to paired prompts (with a usual share choice), or says not now."""
    pressed = await _couple_button(update, context)
    if pressed is None:
        return
    query, client, couple_id, choice = pressed
    services, language = context.services, client.language_code
    async with services.db.transaction() as session:
        outcome = await couples.answer_pairing(session, client, couple_id, choice,
                                               services.clock, services.library)
    if not await _take_press(update, query, language,
                             foreign=outcome.answer is PairingAnswer.FOREIGN):
        return
    said = {
        PairingAnswer.CLOSED: messages.PAIRING_CLOSED,
        PairingAnswer.WAITING: messages.PAIRING_WAITING,
        PairingAnswer.STARTED: messages.PAIRING_STARTED,
        PairingAnswer.DECLINED: messages.PAIRING_DECLINED,
    }[outcome.answer]
    await say(update, context, said, language=language, partner=outcome.partner_name)
    if outcome.answer is PairingAnswer.STARTED:
        await services.planner.plan(list(outcome.client_ids))


async def ask_share(update: Update, context: InterludeContext, client: Client,
                    question: ShareQuestion) -> None:
    """After a paired answer: share it with the partner once both have answered, or keep it."""
    language = client.language_code
    usual = render(messages.SHARE_USUAL_SHARE if question.usual_share
                   else messages.SHARE_USUAL_KEEP, language)
    data = f"{couples.SHARE_BUTTON}:{question.delivery_id}"
    await say(update, context, messages.SHARE_QUESTION, language=language,
              partner=question.partner_name, usual=usual, keyboard=buttons(
                  [(render(messages.SHARE_YES, language), f"{data}:1")],
                  [(render(messages.SHARE_NO, language), f"{data}:0")]))


async def share_button(update: Update, context: InterludeContext) -> None:
    """The author's choice for one paired answer."""
    pressed = await _couple_button(update, context, ("0", "1"))
    if pressed is None:
        return
    query, client, delivery_id, choice = pressed
    services, language, share = context.services, client.language_code, choice == "1"
    async with services.db.transaction() as session:
        outcome = await couples.choose_share(session, client, delivery_id, share,
                                             services.clock, services.screener)
    if outcome.answer is ShareAnswer.SETTLED:
        await query.answer(render(messages.SHARE_SETTLED, language))
        await drop_keyboard(update)
        return
    if not await _take_press(update, query, language,
                             foreign=outcome.answer is ShareAnswer.FOREIGN):
        return
    await say(update, context, messages.SHARE_CHOSEN_YES if share else messages.SHARE_CHOSEN_NO,
              language=language, partner=outcome.partner_name, therapist=outcome.therapist_name)
    await send_pair_held_alerts(context.bot, services, outcome.alerts)


async def uncouple(update: Update, context: InterludeContext) -> None:
    """Leave paired prompts: they stop for both; the other partner is told kindly, no reasons."""
    client = await current_client(update, context)
    if client is None:
        return
    async with client_for_update(context, client.id) as (session, stored):
        pair = await couples.uncouple(session, stored, context.services.clock)
    if pair is None:
        await say(update, context, messages.NOT_IN_A_COUPLE, language=client.language_code)
        return
    await say(update, context, messages.UNCOUPLED, language=client.language_code,
              partner=pair.other.display_name)


async def couple_command(update: Update, context: InterludeContext) -> None:
    """A therapist links two of their clients: /couple 3 7. Anyone else gets the usual answer."""
    user, services = update.effective_user, context.services
    assert user is not None
    async with services.db.transaction() as session:
        therapist = await session.scalar(select(Therapist).where(
            Therapist.telegram_user_id == user.id))
        own = [] if therapist is None else list(await session.scalars(
            select(Client).where(Client.therapist_id == therapist.id,
                                 Client.status == ClientStatus.ACTIVE).order_by(Client.id)))
    if therapist is None:
        await unknown_command(update, context)
        return
    numbers = parse_ints(list(context.args or []))
    if numbers is None or len(numbers) != 2:
        listed = "\n".join(f"{c.id}  {c.display_name}" for c in own) or render(
            messages.COUPLE_NO_CLIENTS, user.language_code)
        await say(update, context, messages.COUPLE_HOW, clients=listed)
        return
    try:
        async with services.db.transaction() as session:
            couple = await couples.link(session, first=numbers[0], second=numbers[1],
                                        clock=services.clock, library=services.library,
                                        therapist_id=therapist.id)
            couple_id = couple.id
    except couples.CoupleError as error:
        await say(update, context, messages.COUPLE_PROBLEM, problem=str(error))
        return
    names = {c.id: c.display_name for c in own}
    await say(update, context, messages.COUPLE_ASKED, first=names[numbers[0]],
              second=names[numbers[1]], couple_id=couple_id)


# The repair exercise ----------------------------------------------------------------------------
#
# /repair -> this partner's first step now; the other gets an invitation (Join / Not this time)
# through the outbox. Each step has "Pause here" and "A grounding moment". Progress is the
# delivery's own (Delivery.progress), so typing after a pause, /repair, or a restart all resume.
# When both have finished, each gets what the other shared and may suggest a 20-minute talk
# (a few times outside both partners' quiet hours), which the other accepts with a button.


async def _show_step(update: Update, context: InterludeContext, client: Client,
                     outcome: couples.RepairOutcome, *, whole: bool) -> None:
    """Send the exercise at the partner's current step (with its opening words if `whole`)."""
    assert outcome.delivery_id is not None and outcome.prompt is not None
    language = client.language_code
    rendered = prompt_message(outcome.delivery_id, outcome.prompt, language) if whole \
        else question_message(outcome.delivery_id, outcome.prompt, outcome.step, language)
    chat = update.effective_chat
    assert chat is not None
    sent = await context.bot.send_message(chat.id, rendered.text, reply_markup=rendered.keyboard)
    async with context.services.db.transaction() as session:
        await couples.mark_sent(session, outcome.delivery_id, sent.message_id,
                                context.services.clock)


async def repair(update: Update, context: InterludeContext) -> None:
    """Start a repair exercise and invite the partner, or carry on with the open one."""
    client = await current_client(update, context)
    if client is None:
        return
    services, language = context.services, client.language_code
    async with services.db.transaction() as session:
        outcome = await couples.start_repair(session, client, services.clock, services.library,
                                             services.settings)
    if outcome.result is couples.Repair.NOT_COUPLED:
        await say(update, context, messages.REPAIR_NOT_COUPLED, language=language)
    elif outcome.result is couples.Repair.DONE:
        await say(update, context, messages.REPAIR_DONE, language=language)
    elif outcome.result is couples.Repair.RESUMED:
        await say(update, context, messages.REPAIR_RESUMED, language=language)
        await _show_step(update, context, client, outcome, whole=outcome.step == 0)
    elif outcome.result is couples.Repair.JOINED:
        await _show_step(update, context, client, outcome, whole=True)
    elif outcome.result is couples.Repair.STARTED:
        await say(update, context, messages.REPAIR_STARTED, language=language,
                  partner=outcome.partner_name)
        await _show_step(update, context, client, outcome, whole=True)


async def invitation_button(update: Update, context: InterludeContext) -> None:
    """The invited partner joins the exercise, or declines it without penalty."""
    pressed = await _couple_button(update, context, ("j", "d"))
    if pressed is None:
        return
    query, client, group_id, choice = pressed
    services, language = context.services, client.language_code
    async with services.db.transaction() as session:
        outcome = await couples.answer_invitation(session, client, group_id, choice == "j",
                                                  services.clock, services.library,
                                                  services.settings)
    if not await _take_press(update, query, language,
                             foreign=outcome.result is couples.Repair.FOREIGN):
        return
    if outcome.result is couples.Repair.CLOSED:
        await say(update, context, messages.PAIRING_CLOSED, language=language)
    elif outcome.result is couples.Repair.DECLINED:
        await say(update, context, messages.REPAIR_DECLINED, language=language)
    else:
        await _show_step(update, context, client, outcome, whole=True)


async def step_button(update: Update, context: InterludeContext) -> None:
    """Pause here, or a grounding moment from the library, at any step of a paired exercise."""
    pressed = await _couple_button(update, context, ("p", "g"))
    if pressed is None:
        return
    query, client, delivery_id, choice = pressed
    services, language = context.services, client.language_code
    async with services.db.transaction() as session:
        outcome = await couples.exercise_step(session, client, delivery_id)
    if not await _take_press(update, query, language,
                             foreign=outcome.result is couples.Repair.FOREIGN):
        return
    if outcome.result is couples.Repair.CLOSED:
        await say(update, context, messages.PROMPT_CLOSED, language=language)
        return
    if choice == "p":
        await say(update, context, messages.REPAIR_PAUSED, language=language)
        return
    exercise = services.library.prompts.get(services.settings.grounding_prompt_activated)
    chat = update.effective_chat
    if exercise is not None and chat is not None:
        await context.bot.send_message(chat.id, exercise.text)
    await say(update, context, messages.REPAIR_AFTER_GROUNDING, language=language)
    await _show_step(update, context, client, outcome, whole=False)


async def talk_button(update: Update, context: InterludeContext) -> None:
    """After both finished: offer times for a 20-minute talk, propose one, accept or decline it."""
    pressed = await _couple_button(update, context)
    if pressed is None:
        return
    query, client, group_id, action = pressed
    services, language = context.services, client.language_code
    async with services.db.transaction() as session:
        outcome = await couples.talk(session, client, group_id, action, services.clock)
    if not await _take_press(update, query, language, foreign=outcome.result == "foreign"):
        return
    if outcome.result == "closed":
        await say(update, context, messages.PAIRING_CLOSED, language=language)
    elif outcome.result == "slots" and not outcome.slots:
        await say(update, context, messages.REPAIR_TALK_NO_SLOTS, language=language)
    elif outcome.result == "slots":
        rows = [[(couples.talk_time(slot, outcome.zone),
                  f"{couples.TALK_BUTTON}:{group_id}:{int(slot.timestamp()) // 60}")]
                for slot in outcome.slots]
        await say(update, context, messages.REPAIR_TALK_PICK, language=language,
                  partner=outcome.partner_name, keyboard=buttons(*rows))
    elif outcome.result == "proposed" and outcome.at is not None:
        await say(update, context, messages.REPAIR_TALK_SENT, language=language,
                  partner=outcome.partner_name,
                  when=couples.talk_time(outcome.at, outcome.zone))
    elif outcome.result == "accepted" and outcome.at is not None:
        await say(update, context, messages.REPAIR_TALK_SET, language=language,
                  partner=outcome.partner_name,
                  when=couples.talk_time(outcome.at, outcome.zone))
    elif outcome.result == "not_that_time":
        await say(update, context, messages.REPAIR_TALK_OTHER_TIME, language=language,
                  partner=outcome.partner_name)
