"""The client's own commands: /help, /pause, /resume, /stop, /timezone, /quiet."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import Update

from bot import messages
from bot.handlers.common import client_for_update, current_client, say
from bot.handlers.context import InterludeContext
from bot.handlers.keyboards import buttons
from bot.handlers.onboarding import ask_quiet_hours
from bot.messages import render
from bot.services import controls, couples, onboarding, timezones


async def help_command(update: Update, context: InterludeContext) -> None:
    """What the client can do, and the crisis line."""
    client = await current_client(update, context)
    if client is None:
        return
    await say(update, context, messages.HELP, language=client.language_code,
              crisis_line=context.services.settings.crisis_line)
    async with context.services.db.transaction() as session:
        couple = await couples.active_couple(session, client.id)
        pair = await couples.pair_of(session, couple, client.id) if couple else None
    if pair is not None:
        await say(update, context, messages.HELP_COUPLE, language=client.language_code,
                  partner=pair.other.display_name)


async def pause(update: Update, context: InterludeContext) -> None:
    """Pause prompts for some days, or until /resume."""
    client = await current_client(update, context)
    if client is None:
        return
    days = controls.parse_pause_days(" ".join(context.args or []))
    if days is None:
        await say(update, context, messages.PAUSE_HOW, language=client.language_code)
        return
    services = context.services
    async with client_for_update(context, client.id) as (_, stored):
        until = controls.pause(stored, days, services.clock)
    if until is None:
        await say(update, context, messages.PAUSED, language=client.language_code)
        return
    local = until.astimezone(ZoneInfo(client.timezone or services.settings.default_timezone))
    await say(update, context, messages.PAUSED_UNTIL, language=client.language_code,
              until=local.strftime("%Y-%m-%d %H:%M"))


async def resume(update: Update, context: InterludeContext) -> None:
    """End a pause."""
    client = await current_client(update, context)
    if client is None:
        return
    services = context.services
    async with client_for_update(context, client.id) as (session, stored):
        resumed = controls.resume(stored, services.clock)
        if resumed:
            await controls.replan(session, stored, services.clock)
    if resumed:
        await services.planner.plan([client.id])
    await say(update, context, messages.RESUMED if resumed else messages.NOT_PAUSED,
              language=client.language_code)


async def stop(update: Update, context: InterludeContext) -> None:
    """Withdraw consent: nothing more is sent or kept, at once."""
    client = await current_client(update, context)
    if client is None:
        return
    async with client_for_update(context, client.id) as (session, stored):
        await onboarding.revoke_consent(session, stored, context.services.clock)
    await say(update, context, messages.STOPPED, language=client.language_code)


async def timezone(update: Update, context: InterludeContext) -> None:
    """Show the time zone, with a button to change it."""
    client = await current_client(update, context)
    if client is None:
        return
    language = client.language_code
    zone = client.timezone or context.services.settings.default_timezone
    await say(update, context, messages.TIMEZONE_CURRENT, language=language, zone=timezones.label(zone),
              local_time=timezones.local_time(zone, context.services.clock.now()),
              keyboard=buttons([(render(messages.TIMEZONE_CHANGE, language), "tz:other:0")]))


async def quiet(update: Update, context: InterludeContext) -> None:
    """Show the quiet hours, with buttons to keep or change them."""
    client = await current_client(update, context)
    if client is None:
        return
    await ask_quiet_hours(update, context, client, onboarding=False)
