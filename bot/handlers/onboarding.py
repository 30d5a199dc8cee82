"""Joining: the invite deep link, consent, time zone and quiet hours; and therapists' links.

```mermaid
flowchart LR
    start["/start token"] -->|valid invite| consent{consent?}
    consent -->|Not now| declined[nothing stored]
    consent -->|Yes| tz{time zone}
    tz -->|confirm / pick / type| quiet{quiet hours}
    quiet -->|keep / type| ready[all set: first prompt time]
```

Where the flow waits for typed text, the wait is stored on the client (Client.awaiting), so a
restart in the middle picks up where it was. Button data carries `:1` during onboarding, so the
same buttons reused by /timezone and /quiet do not restart the welcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from telegram import Update

from bot import messages
from bot.db.models import Client, ClientStatus, Delivery, DeliveryStatus, Therapist
from bot.handlers.common import (
    button_press,
    client_for_update,
    current_client,
    drop_keyboard,
    language_of,
    say,
)
from bot.handlers.context import InterludeContext
from bot.handlers.keyboards import buttons, consent_message
from bot.messages import render
from bot.services import controls, onboarding, timezones
from bot.services.controls import Awaiting
from bot.services.onboarding import InviteState
from bot.services.tokens import THERAPIST_PREFIX

INVITE_PROBLEMS = {
    InviteState.UNKNOWN: messages.INVITE_UNKNOWN,
    InviteState.EXPIRED: messages.INVITE_EXPIRED,
    InviteState.USED: messages.INVITE_USED,
}


async def start(update: Update, context: InterludeContext) -> None:
    """An invite link asks for consent; a therapist link binds this account; else a hello."""
    user, services = update.effective_user, context.services
    assert user is not None
    token = context.args[0] if context.args else None
    if token and token.startswith(THERAPIST_PREFIX):
        await _bind_therapist(update, context, token)
        return

    async with services.db.transaction() as session:
        client = await onboarding.client_by_telegram(session, user.id)
        check = await onboarding.check_invite(session, token, services.clock) if token else None
    if client is not None and client.status in (ClientStatus.ACTIVE, ClientStatus.UNREACHABLE) and (
            check is None or check.state is not InviteState.VALID):
        if client.status is ClientStatus.ACTIVE and not onboarding.consent_is_current(
                client, services.settings):
            await _ask_renewal(update, context, client)
            return
        await say(update, context, messages.WELCOME_BACK, language=client.language_code)
        return
    if check is None:
        stopped = client is not None and client.status is ClientStatus.STOPPED
        await say(update, context, messages.STOPPED_ALREADY if stopped else messages.NOT_INVITED)
        return
    if check.state is not InviteState.VALID:
        await say(update, context, INVITE_PROBLEMS[check.state])
        return
    assert check.client is not None and token is not None
    settings = services.settings
    await say(update, context, messages.WELCOME, name=check.client.display_name,
              practice=settings.practice_name, therapist=check.therapist_name)
    language = language_of(update)
    consent = consent_message(onboarding.consent_text(language, check.therapist_name, settings),
                              language, token=token)
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_message(chat.id, consent.text, reply_markup=consent.keyboard)


async def _bind_therapist(update: Update, context: InterludeContext, token: str) -> None:
    user, services = update.effective_user, context.services
    assert user is not None
    async with services.db.transaction() as session:
        therapist = await onboarding.bind_therapist(session, token, user.id, services.clock)
    if therapist is None:
        await say(update, context, messages.THERAPIST_LINK_INVALID)
    else:
        from bot.handlers.therapist import show_commands
        await say(update, context, messages.THERAPIST_LINKED, name=therapist.display_name)
        await show_commands(context.bot, user.id)


async def _ask_renewal(update: Update, context: InterludeContext, client: Client) -> None:
    async with context.services.db.transaction() as session:
        therapist = await session.get(Therapist, client.therapist_id)
        assert therapist is not None
    language = client.language_code
    renewal = consent_message(
        onboarding.renewal_text(language, therapist.display_name, context.services.settings), language)
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_message(chat.id, renewal.text, reply_markup=renewal.keyboard)


async def consent_answer(update: Update, context: InterludeContext) -> None:
    """Yes records consent and moves on to the time zone; Not now stores nothing."""
    query, user, services = update.callback_query, update.effective_user, context.services
    assert query is not None and user is not None and query.data is not None
    await query.answer()
    await drop_keyboard(update)
    parts = query.data.split(":", 2)
    if parts[1] in ("renew", "later"):
        await _renewal_answer(update, context, agreed=parts[1] == "renew")
        return
    if parts[1] != "y" or len(parts) != 3:
        await say(update, context, messages.CONSENT_DECLINED)
        return
    async with services.db.transaction() as session:
        check = await onboarding.give_consent(session, parts[2], user.id, user.language_code,
                                              services.clock, services.settings, services.library)
        client = check.client
    if check.state is not InviteState.VALID or client is None:
        await say(update, context, INVITE_PROBLEMS[check.state])
        return
    await say(update, context, messages.CONSENT_THANKS, language=client.language_code)
    await ask_timezone(update, context, client, onboarding=True)


async def _renewal_answer(update: Update, context: InterludeContext, *, agreed: bool) -> None:
    """An updated consent: yes lets held prompts go; not now keeps holding them."""
    services = context.services
    client = await current_client(update, context)
    if client is None or client.status is not ClientStatus.ACTIVE:
        await say(update, context, messages.STOPPED_ALREADY)
        return
    if not agreed:
        await say(update, context, messages.CONSENT_RENEWAL_LATER, language=client.language_code)
        return
    async with client_for_update(context, client.id) as (session, stored):
        await onboarding.renew_consent(session, stored, services.clock, services.settings)
    await say(update, context, messages.CONSENT_RENEWED, language=client.language_code)


async def ask_timezone(update: Update, context: InterludeContext, client: Client,
                       *, onboarding: bool, confirm_suggested: bool = True) -> None:
    """Confirm a zone the therapist suggested, or offer likely ones and invite typing."""
    language, flag = client.language_code, int(onboarding)
    services = context.services
    now = services.clock.now()
    async with client_for_update(context, client.id) as (_session, stored):
        stored.awaiting = Awaiting.TIMEZONE_THEN_QUIET if onboarding else Awaiting.TIMEZONE
    if onboarding and confirm_suggested and client.suggested_timezone:
        zone = client.suggested_timezone
        await say(update, context, messages.TIMEZONE_CONFIRM, language=language, zone=timezones.label(zone),
                  local_time=timezones.local_time(zone, now),
                  keyboard=buttons([(render(messages.TIMEZONE_YES, language), f"tz:set:{flag}:{zone}"),
                                    (render(messages.TIMEZONE_OTHER, language), f"tz:other:{flag}")]))
        return
    zones = timezones.likely(language, client.suggested_timezone,
                             context.services.settings.default_timezone)
    rows = [[(timezones.label(zone), f"tz:set:{flag}:{zone}") for zone in zones[i:i + 2]]
            for i in range(0, len(zones), 2)]
    await say(update, context, messages.TIMEZONE_QUESTION, language=language, keyboard=buttons(*rows))


async def timezone_button(update: Update, context: InterludeContext) -> None:
    """A time zone button: confirm, choose another, or set one."""
    pressed = await button_press(update, context)
    if pressed is None:
        return
    query, data, client = pressed
    await query.answer()
    _, action, flag, *rest = data.split(":", 3)
    during_onboarding = flag == "1"
    if action == "other":
        await drop_keyboard(update)
        await ask_timezone(update, context, client, onboarding=during_onboarding,
                           confirm_suggested=False)
        return
    zone = rest[0] if rest else ""
    if not timezones.is_zone(zone):
        return
    await drop_keyboard(update)
    await set_timezone(update, context, client, zone, during_onboarding or
                       client.awaiting == Awaiting.TIMEZONE_THEN_QUIET)


async def set_timezone(update: Update, context: InterludeContext, client: Client, zone: str,
                       during_onboarding: bool) -> None:
    services = context.services
    async with client_for_update(context, client.id) as (session, stored):
        await controls.set_timezone(session, stored, zone, services.clock)
        stored.awaiting = Awaiting.QUIET_HOURS_THEN_DONE if during_onboarding else None
    await say(update, context, messages.TIMEZONE_SET, language=client.language_code,
              zone=timezones.label(zone),
              local_time=timezones.local_time(zone, services.clock.now()))
    if during_onboarding:
        await ask_quiet_hours(update, context, client, onboarding=True)
    else:
        await services.planner.plan([client.id])


async def ask_quiet_hours(update: Update, context: InterludeContext, client: Client,
                          *, onboarding: bool) -> None:
    language, flag = client.language_code, int(onboarding)
    message = messages.QUIET_HOURS_QUESTION if onboarding else messages.QUIET_HOURS_CURRENT
    await say(update, context, message, language=language, start=client.quiet_start,
              end=client.quiet_end,
              keyboard=buttons([(render(messages.QUIET_HOURS_KEEP, language), f"quiet:keep:{flag}"),
                                (render(messages.QUIET_HOURS_CHANGE, language), f"quiet:change:{flag}")]))


async def quiet_button(update: Update, context: InterludeContext) -> None:
    """Keep the quiet hours, or start typing new ones."""
    pressed = await button_press(update, context)
    if pressed is None:
        return
    query, data, client = pressed
    await query.answer()
    _, action, flag = [*data.split(":"), "0"][:3]
    await drop_keyboard(update)
    async with client_for_update(context, client.id) as (_session, stored):
        if action == "change":
            stored.awaiting = Awaiting.QUIET_HOURS_THEN_DONE if flag == "1" else Awaiting.QUIET_HOURS
        else:
            stored.awaiting = None
    if action == "change":
        await say(update, context, messages.QUIET_HOURS_ASK, language=client.language_code)
    elif flag == "1":
        await finish_onboarding(update, context, client)


async def typed_setting(update: Update, context: InterludeContext, client: Client, text: str) -> None:
    """Text typed while the bot waits for a time zone or quiet hours."""
    services = context.services
    if client.awaiting in (Awaiting.TIMEZONE, Awaiting.TIMEZONE_THEN_QUIET):
        zone = timezones.resolve(text)
        if zone is None:
            await say(update, context, messages.TIMEZONE_NOT_FOUND, language=client.language_code)
            return
        await set_timezone(update, context, client, zone,
                           client.awaiting == Awaiting.TIMEZONE_THEN_QUIET)
        return
    parsed = controls.parse_quiet_hours(text)
    if parsed is None:
        await say(update, context, messages.QUIET_HOURS_UNREADABLE, language=client.language_code)
        return
    async with client_for_update(context, client.id) as (session, stored):
        await controls.set_quiet_hours(session, stored, *parsed, services.clock)
        stored.awaiting = None
    await say(update, context, messages.QUIET_HOURS_SET, language=client.language_code,
              start=parsed[0], end=parsed[1])
    if client.awaiting == Awaiting.QUIET_HOURS_THEN_DONE:
        await finish_onboarding(update, context, client)
    else:
        await services.planner.plan([client.id])


async def finish_onboarding(update: Update, context: InterludeContext, client: Client) -> None:
    """Plan the first prompts and tell the client when the first one comes."""
    services = context.services
    await services.planner.plan([client.id])
    async with services.db.transaction() as session:
        stored = await session.get(Client, client.id)
        first = await session.scalar(
            select(Delivery.due_at).where(Delivery.client_id == client.id,
                                          Delivery.status == DeliveryStatus.PENDING)
            .order_by(Delivery.due_at).limit(1))
    assert stored is not None and stored.timezone is not None
    if first is None:
        await say(update, context, messages.ALL_SET_LATER, language=stored.language_code)
        return
    await say(update, context, messages.ALL_SET_NEXT, language=stored.language_code,
              when=describe_when(first, stored.timezone, services.clock.now(), stored.language_code))


def describe_when(moment: datetime, zone: str, now: datetime, language: str | None) -> str:
    """'today at 20:00', 'tomorrow at 10:00' or 'on Monday at 10:00', in the client's zone."""
    local, today = moment.astimezone(ZoneInfo(zone)), now.astimezone(ZoneInfo(zone)).date()
    time_text = local.strftime("%H:%M")
    if local.date() == today:
        return render(messages.WHEN_TODAY, language, time=time_text)
    if local.date() == today + timedelta(days=1):
        return render(messages.WHEN_TOMORROW, language, time=time_text)
    day = format_date(local.date(), "EEEE", locale=(language or "en").split("-")[0])
    return render(messages.WHEN_DAY, language, day=day, time=time_text)
