"""Questionnaires in Telegram: one item at a time in one message, updated in place.

```mermaid
flowchart LR
    sent["opening: introduction, what the therapist is told, item 1 of N"] --> press[answer button]
    press -->|stored| next[the message shows the next unanswered item]
    next --> press
    next -->|‹ Back one| previous[the item before, its answer ticked] --> press
    press -->|PHQ-9 item 9 above 'not at all'| care[resources to the client, therapist alerted]
    press -->|last item| done[thanks; scored and kept]
    typed[the client writes instead] --> again[the current item sent again]
```

Where the client is lives in the database (the response's item and answers), so the same
buttons keep working after an interruption or a restart; a questionnaire whose prompt closes
half-done is kept, marked incomplete (services/questionnaires.close_expired).
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot import messages
from bot.db.models import Client
from bot.handlers.common import button_press, say
from bot.handlers.context import InterludeContext
from bot.handlers.crisis import crisis_resources, send_alert
from bot.handlers.keyboards import parse_ints, questionnaire_message
from bot.messages import render
from bot.services import questionnaires
from bot.services.questionnaires import Asked


async def answer_button(update: Update, context: InterludeContext) -> None:
    """An answer to the item shown (or ‹ Back one): the message moves to the next item."""
    pressed = await button_press(update, context)
    if pressed is None:
        return
    query, data, client = pressed
    services, language = context.services, client.language_code
    parts = data.split(":")
    numbers = parse_ints(parts[1:3])
    going_back = len(parts) == 4 and parts[3] == "b"
    value = None if going_back else parse_ints(parts[3:4])
    if numbers is None or len(parts) != 4 or (not going_back and value is None):
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, language))
        return
    delivery_id, item = numbers
    async with services.db.transaction() as session:
        if going_back:
            asked = await questionnaires.back(session, client, services.clock,
                                              delivery_id=delivery_id, item=item)
        else:
            assert value is not None
            asked = await questionnaires.answer(session, client, services.clock,
                                                delivery_id=delivery_id, item=item,
                                                value=value[0])
    if asked.result == "foreign":
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU, language))
        return
    if asked.result in ("closed", "finished"):
        await query.answer(render(messages.PROMPT_CLOSED if asked.result == "closed"
                                  else messages.QUESTIONNAIRE_FINISHED, language))
        if query.message is not None and getattr(query.message, "reply_markup", None):
            await query.edit_message_reply_markup(reply_markup=None)
        return
    await query.answer()
    if asked.alert is not None:
        # Care first: the resources to the client and the alert to the therapist, ahead of any
        # queue and whatever the hour, before the questionnaire moves on.
        await _care(update, context, client, asked)
    rendered = _shown(asked, language)
    await query.edit_message_text(rendered[0], reply_markup=rendered[1])


def _shown(asked: Asked, language: str | None) -> tuple[str, InlineKeyboardMarkup | None]:
    assert asked.prompt is not None and asked.delivery_id is not None
    if asked.result == "done":
        spec = asked.prompt["questionnaire"]
        return render(messages.QUESTIONNAIRE_DONE, language, title=spec["title"],
                      total=len(spec["items"])), None
    rendered = questionnaire_message(asked.delivery_id, asked.prompt, asked.item, asked.values,
                                     language)
    return rendered.text, rendered.keyboard


async def _care(update: Update, context: InterludeContext, client: Client, asked: Asked) -> None:
    assert asked.alert is not None and asked.prompt is not None and asked.alert_item is not None
    services = context.services
    await say(update, context, messages.QUESTIONNAIRE_SAFETY_REPLY, language=client.language_code,
              therapist=asked.therapist_name, resources=crisis_resources(services), urgent=True)
    spec = asked.prompt["questionnaire"]
    value = asked.values[asked.alert_item - 1]
    answer = next(o["label"] for o in spec["options"] if o["value"] == value)
    await send_alert(context.bot, services, asked.alert, render(
        messages.THERAPIST_QUESTIONNAIRE_ALERT, None, client=asked.alert.client_name,
        answer=answer, number=asked.alert_item, title=spec["title"],
        item=spec["items"][asked.alert_item - 1]["text"], alert_id=asked.alert.id))


async def show_where_they_were(update: Update, context: InterludeContext, client: Client,
                               delivery_id: int) -> bool:
    """After the client wrote during an open questionnaire: its current item, sent again.

    False when there is nothing to show (it had closed or was finished)."""
    services = context.services
    async with services.db.transaction() as session:
        asked = await questionnaires.current(session, client, services.clock, delivery_id)
    chat = update.effective_chat
    if asked.result != "item" or chat is None:
        return False
    await say(update, context, messages.QUESTIONNAIRE_WHERE_YOU_WERE,
              language=client.language_code)
    text, keyboard = _shown(asked, client.language_code)
    await context.bot.send_message(chat.id, text, reply_markup=keyboard)
    return True
