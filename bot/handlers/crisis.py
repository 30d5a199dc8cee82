"""Care that cannot wait: crisis language, and check-ins that show someone struggling for a while.

Crisis language gets an answer before anything else: resources now, and the therapist alerted.

Every handler that receives client text calls `respond_to_crisis` first. The reply goes out at
once from the handler, never through the prompt queue, and quiet hours do not apply to it.
People who were never invited, or who stopped, get the resources too; nothing of theirs is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot, Message, Update
from telegram.error import TelegramError

from bot import messages
from bot.db.models import Client, ClientStatus, Therapist
from bot.handlers.common import replied_to, say
from bot.handlers.context import InterludeContext, Services
from bot.messages import render
from bot.safety.rules import Category
from bot.scheduling.ratelimit import PRIORITY
from bot.services import replies, safety
from bot.services.onboarding import client_by_telegram

log = logging.getLogger(__name__)
CATEGORY_LABELS: dict[Category, str] = {
    "suicidal": messages.CATEGORY_SUICIDAL,
    "self_harm": messages.CATEGORY_SELF_HARM,
    "danger_from_person": messages.CATEGORY_DANGER,
    "medical_emergency": messages.CATEGORY_MEDICAL,
}


async def respond_to_crisis(update: Update, context: InterludeContext, message: Message,
                            text: str | None, *, keep: bool = True) -> bool:
    """Screen `text`; on crisis language, answer and alert, and return True (handled)."""
    services = context.services
    if not text:
        return False
    screening = services.screener.screen(text)
    if not screening.crisis or screening.category is None:
        return False
    resources = crisis_resources(services)
    user = update.effective_user
    assert user is not None
    try:
        return await _answer_and_alert(update, context, message, text, screening.category,
                                       resources, keep=keep)
    except Exception:
        # The database (or anything before the answer) failed: the resources still go out, once;
        # the update is then retried from the inbox, so the alert is recorded when it can be.
        if update.update_id not in services.crisis_answered:
            services.crisis_answered.add(update.update_id)
            await say(update, context, messages.CRISIS_REPLY_NO_THERAPIST, resources=resources,
                      urgent=True)
        raise


def crisis_resources(services: Services) -> str:
    """The crisis lines for the practice's region (or the default ones)."""
    rules = services.screener.rules
    return rules.resources.get(services.settings.crisis_region, rules.resources["default"])


async def _answer_and_alert(update: Update, context: InterludeContext, message: Message,
                            text: str, category: Category, resources: str, *, keep: bool) -> bool:
    services = context.services
    user = update.effective_user
    assert user is not None
    async with services.db.transaction() as session:
        client = await client_by_telegram(session, user.id)
        if client is None or client.status is ClientStatus.STOPPED:
            client = None
        else:
            if client.status is ClientStatus.UNREACHABLE:
                client.status = ClientStatus.ACTIVE
            reply_id = None
            if keep:
                outcome = await replies.record_message(
                    session, client, services.clock, message_id=message.message_id, text=text,
                    reply_to_message_id=replied_to(message))
                reply_id = outcome.reply_id
            alert = await safety.raise_alert(session, client, category, reply_id, services.clock)
            therapist = await session.get(Therapist, client.therapist_id)
            therapist_name = therapist.display_name if therapist else ""
    log.warning("crisis language screened: category %s", category)
    already_answered = update.update_id in services.crisis_answered
    if client is None:
        if not already_answered:
            await say(update, context, messages.CRISIS_REPLY_NO_THERAPIST, resources=resources,
                      urgent=True)
        return True
    if not already_answered:
        await say(update, context, messages.CRISIS_REPLY, language=client.language_code,
                  resources=resources, therapist=therapist_name, urgent=True)
    await _notify_therapist(context, alert, render(
        messages.THERAPIST_ALERT, None, client=alert.client_name, alert_id=alert.id,
        category=render(CATEGORY_LABELS[alert.category])))  # type: ignore[index]
    return True


async def respond_to_checkin_pattern(update: Update, context: InterludeContext,
                                     client: Client) -> bool:
    """After a check-in: very high activation twice, or shut down for days, gets care now."""
    services, settings = context.services, context.services.settings
    async with services.db.transaction() as session:
        stored = await session.get(Client, client.id)
        assert stored is not None
        pattern = await safety.checkin_pattern(session, stored, services.clock, settings)
        if pattern is None:
            return False
        alert = await safety.raise_alert(session, stored, pattern, None, services.clock)
    log.warning("check-in pattern alert: %s", pattern)
    key = (settings.grounding_prompt_activated if pattern == safety.HIGH_ACTIVATION
           else settings.grounding_prompt_shut_down)
    exercise = services.library.prompts.get(key)
    chat = update.effective_chat
    if exercise is not None and chat is not None:
        await context.bot.send_message(chat.id, exercise.text, rate_limit_args=PRIORITY)
    label = (messages.PATTERN_HIGH_ACTIVATION if pattern == safety.HIGH_ACTIVATION
             else messages.PATTERN_PROLONGED_SHUTDOWN)
    await _notify_therapist(context, alert, render(
        messages.THERAPIST_CHECKIN_ALERT, None, client=alert.client_name, alert_id=alert.id,
        pattern=render(label)))
    return True


async def _notify_therapist(context: InterludeContext, alert: safety.RaisedAlert,
                            text: str) -> None:
    await send_alert(context.bot, context.services, alert, text)


async def send_alert(bot: Bot, services: Services, alert: safety.RaisedAlert, text: str) -> None:
    """The alert to the therapist's own Telegram, ahead of the queue; recorded when it arrived."""
    if alert.therapist_telegram_id is None:
        return
    try:
        await bot.send_message(alert.therapist_telegram_id, text, rate_limit_args=PRIORITY)
    except TelegramError as error:
        log.warning("could not alert the therapist on Telegram (%s)", type(error).__name__)
        return
    async with services.db.transaction() as session:
        await safety.mark_notified(session, alert.id, services.clock)


async def send_pair_held_alerts(bot: Bot, services: Services,
                                alerts: Iterable[safety.RaisedAlert]) -> None:
    """Crisis language found when a pair was to be revealed: held back, and the therapist told."""
    for alert in alerts:
        label = CATEGORY_LABELS.get(alert.category)  # type: ignore[call-overload]
        await send_alert(bot, services, alert, render(
            messages.THERAPIST_PAIR_HELD, None, client=alert.client_name, alert_id=alert.id,
            category=render(label) if label else alert.category))
