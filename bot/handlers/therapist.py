"""Therapists on their phone, between sessions: their clients, invites, one-off prompts, pauses,
alerts, a dashboard sign-in link and the daily digest (review path, in Telegram).

A command comes from a therapist when the sender's Telegram account is linked to a therapist
(`interlude therapist add` prints the link). /pause, /resume and /help mean the client's own
commands for everyone else. Every read of client data goes through practice.client_for, so it
is limited to the therapist's own clients and written to the audit log (channel "telegram").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot import messages
from bot.db.models import Client, Therapist
from bot.handlers.common import drop_keyboard, say
from bot.handlers.context import InterludeContext, Services
from bot.handlers.keyboards import buttons
from bot.messages import render
from bot.services import (
    alerts,
    audit,
    digest,
    onboarding,
    practice,
    questionnaires,
    records,
    review,
    schedules,
    signin,
)
from bot.services.audit import Actor
from bot.services.onboarding import OnboardingError

log = logging.getLogger(__name__)
Handler = Callable[[Update, InterludeContext], Awaitable[None]]
RECENT_DAYS = 14
DEMO_USERNAME = "InterludeDemoBot"
CATEGORY_LABELS = {
    "suicidal": messages.CATEGORY_SUICIDAL, "self_harm": messages.CATEGORY_SELF_HARM,
    "danger_from_person": messages.CATEGORY_DANGER,
    "medical_emergency": messages.CATEGORY_MEDICAL,
    "high_activation": messages.PATTERN_HIGH_ACTIVATION,
    "prolonged_shutdown": messages.PATTERN_PROLONGED_SHUTDOWN,
}


async def show_commands(bot: Any, chat_id: int) -> None:
    """The therapist's commands in the menu of their own chat (clients keep theirs)."""
    try:
        await bot.set_my_commands([BotCommand(name, render(text))
                                   for name, text in messages.THERAPIST_COMMANDS],
                                  scope=BotCommandScopeChat(chat_id))
    except TelegramError as error:
        log.warning("could not set a therapist's command menu (%s)", type(error).__name__)


async def current_therapist(update: Update, context: InterludeContext) -> Therapist | None:
    user = update.effective_user
    if user is None:
        return None
    async with context.services.db.transaction() as session:
        return await session.scalar(select(Therapist).where(Therapist.telegram_user_id == user.id))


def for_therapists(therapist_handler: Callable[[Update, InterludeContext, Therapist], Awaitable[None]],
                   otherwise: Handler) -> Handler:
    """A command that means one thing to a linked therapist and `otherwise` to anyone else.
    A change the services refuse (an unknown prompt, a client who has left) is explained to
    the therapist in one sentence."""
    async def handle(update: Update, context: InterludeContext) -> None:
        therapist = await current_therapist(update, context)
        if therapist is None:
            await otherwise(update, context)
            return
        try:
            await therapist_handler(update, context, therapist)
        except OnboardingError as error:
            await say(update, context, messages.THERAPIST_REFUSED, reason=str(error))
    handle.__doc__ = therapist_handler.__doc__
    return handle


def _actor(therapist: Therapist) -> Actor:
    return Actor(therapist.id, "telegram")


@asynccontextmanager
async def _own_client(context: InterludeContext, therapist: Therapist, client_id: int, action: str,
                      *, detail: str | None = None) -> AsyncIterator[tuple[AsyncSession, Client]]:
    """A transaction with one of the therapist's own clients, the action written to the audit log."""
    services = context.services
    async with services.db.transaction() as session:
        person = await practice.client_for(session, _actor(therapist), client_id, action,
                                           services.clock, detail=detail)
        yield session, person


def _text(update: Update) -> str:
    return update.effective_message.text if update.effective_message and \
        update.effective_message.text else ""


def _argument(update: Update) -> str:
    """Everything after the command, as typed (names may have spaces)."""
    parts = _text(update).split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


async def _one_client(update: Update, context: InterludeContext, therapist: Therapist,
                      name: str, command: str) -> Client | None:
    """The client a typed name means, or None after saying why not."""
    if not name:
        await say(update, context, messages.THERAPIST_NAME_NEEDED, command=command)
        return None
    async with context.services.db.transaction() as session:
        found = await practice.find_by_name(session, therapist.id, name)
    if not found:
        await say(update, context, messages.THERAPIST_NOT_FOUND, name=name)
        return None
    if len(found) > 1:
        await say(update, context, messages.THERAPIST_AMBIGUOUS, name=name, command=command,
                  names=", ".join(f"{c.display_name} (#{c.id})" for c in found[:8]),
                  example=found[0].id)
        return None
    return found[0]


async def help_for_therapist(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    """What a therapist can do from Telegram."""
    await say(update, context, messages.THERAPIST_HELP)


async def clients(update: Update, context: InterludeContext) -> None:
    """The therapist's clients with status and last reply."""
    await for_therapists(_clients, _not_for_clients)(update, context)


async def _clients(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    services = context.services
    async with services.db.transaction() as session:
        rows = await practice.summaries(session, therapist.id, services.library, services.clock)
        await audit.record(session, _actor(therapist), "viewed_client_list", services.clock)
    if not rows:
        await say(update, context, messages.THERAPIST_NO_CLIENTS)
        return
    now = services.clock.now()
    lines = [render(messages.THERAPIST_CLIENTS_HEAD, count=len(rows))]
    for row in rows:
        last = _ago(row.last_reply_at, now) if row.last_reply_at else render(messages.THERAPIST_NEVER)
        lines.append("• " + render(messages.THERAPIST_CLIENT_LINE, name=row.name, status=row.status,
                                   last=last))
    await _send(update, context, "\n".join(lines))


def _ago(moment: object, now: object) -> str:
    from datetime import datetime
    assert isinstance(moment, datetime) and isinstance(now, datetime)
    hours = int((now - moment).total_seconds() // 3600)
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


async def client(update: Update, context: InterludeContext) -> None:
    """One client's recent answers and next prompts."""
    await for_therapists(_client, _not_for_clients)(update, context)


async def _client(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    found = await _one_client(update, context, therapist, _argument(update), "client")
    if found is None:
        return
    services = context.services
    now = services.clock.now()
    async with _own_client(context, therapist, found.id, "viewed_client",
                           detail=f"last {RECENT_DAYS} days") as (session, person):
        row = next(r for r in await practice.summaries(session, therapist.id, services.library,
                                                       services.clock) if r.id == person.id)
        entries = await records.timeline(session, person.id, start=now - timedelta(days=RECENT_DAYS))
        planned = await schedules.upcoming(session, person, services.library, services.clock,
                                           services.settings, limit=3)
        zone = schedules.client_zone(person, services.settings)
        measures = questionnaires.trends(await questionnaires.results(session, person.id))
    rate = f"{round(row.answer_rate * 100)}%" if row.answer_rate is not None else "—"
    lines = [render(messages.THERAPIST_CLIENT_HEAD, name=row.name, status=row.status, rate=rate), ""]
    if measures:
        lines += [render(messages.THERAPIST_SCORES_HEAD),
                  *(f"• {_score_line(trend, zone)}" for trend in measures), ""]
    answered = [e for e in entries if e.answers or e.checkin_state][:5]
    lines.append(render(messages.THERAPIST_RECENT_HEAD if answered else messages.THERAPIST_NO_ANSWERS))
    for entry in answered:
        when = entry.at.astimezone(zone)
        said = []
        if entry.checkin_state:
            said.append(f"{entry.checkin_state.replace('_', ' ')} {entry.checkin_intensity or ''}".strip())
        said += [a.text or a.value or f"voice {a.voice_seconds}s" for a in entry.answers]
        lines.append(f"• {when:%d %b %H:%M} {entry.prompt_key or ''}: " + _clip(" / ".join(said)))
    lines += ["", render(messages.THERAPIST_NEXT_HEAD if planned else messages.THERAPIST_NOTHING_PLANNED,
                         zone=zone.key)]
    lines += [f"• {p.local:%a %d %b %H:%M} {p.prompt_key}" for p in planned]
    await _send(update, context, "\n".join(lines))


async def _send(update: Update, context: InterludeContext, text: str) -> None:
    """Text put together from catalog lines and the therapist's own data, cut to fit a message."""
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, text[:4000])


def _score_line(trend: questionnaires.Trend, zone: ZoneInfo) -> str:
    """A questionnaire's latest total, its change from the baseline, and the flags."""
    latest, baseline = trend.latest, trend.baseline
    if latest is None or baseline is None:
        return f"{trend.title}: " + render(messages.THERAPIST_SCORE_INCOMPLETE,
                                           count=trend.incomplete)
    when = f"{latest.at.astimezone(zone):%d %b}"
    if trend.change is None:
        line = render(messages.THERAPIST_SCORE_FIRST, title=trend.title, total=latest.total,
                      band=latest.band, when=when)
    else:
        change = f"{trend.change:+d}" + (f" ({trend.change_percent:+d}%)"
                                          if trend.change_percent is not None else "")
        line = render(messages.THERAPIST_SCORE_LINE, title=trend.title, total=latest.total,
                      band=latest.band, when=when, baseline=baseline.total,
                      since=f"{baseline.at.astimezone(zone):%d %b}", change=change)
    flags = []
    if trend.response:
        flags.append(render(messages.THERAPIST_SCORE_RESPONSE))
    if trend.remission:
        flags.append(render(messages.THERAPIST_SCORE_REMISSION,
                            cutoff=trend.questionnaire.scoring.remission_below))
    if trend.incomplete:
        flags.append(render(messages.THERAPIST_SCORE_INCOMPLETE, count=trend.incomplete))
    return line + ("; " + ", ".join(flags) if flags else "")


def _clip(text: str, length: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[:length - 1] + "…"


async def invite(update: Update, context: InterludeContext) -> None:
    """A new client, and the invite link to hand over."""
    await for_therapists(_invite, _not_for_clients)(update, context)


async def _invite(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    name = _argument(update)
    if not name:
        await say(update, context, messages.THERAPIST_NAME_NEEDED, command="invite")
        return
    services = context.services
    async with services.db.transaction() as session:
        issued = await onboarding.invite_client(
            session, therapist_id=therapist.id, name=name, clock=services.clock,
            settings=services.settings, library=services.library,
            timezone=therapist.timezone or services.settings.default_timezone)
        await audit.record(session, _actor(therapist), "invited_client", services.clock,
                           client_id=issued.id)
        username = (services.settings.bot_username or context.bot.username
                    or await review.bot_username(session) or DEMO_USERNAME)
    await say(update, context, messages.THERAPIST_INVITED, name=name,
              hours=f"{services.settings.invite_ttl_hours:g}",
              link=review.deep_link(username.lstrip("@"), issued.token))


async def send(update: Update, context: InterludeContext) -> None:
    """A prompt from the library to one client, now."""
    await for_therapists(_send_prompt, _not_for_clients)(update, context)


async def _send_prompt(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    argument = _argument(update)
    name, _, key = argument.rpartition(" ")
    if not name or not key:
        await say(update, context, messages.THERAPIST_SEND_HOW)
        return
    found = await _one_client(update, context, therapist, name, "send")
    if found is None:
        return
    services = context.services
    async with _own_client(context, therapist, found.id, "sent_prompt",
                           detail=key) as (session, person):
        prompt = schedules.chosen_prompt(services.library, key, None)
        await schedules.send_now(session, person, prompt, services.clock, services.settings)
    await say(update, context, messages.THERAPIST_SENT, name=found.display_name, key=key)


def pause_command(client_pause: Handler) -> Handler:
    """/pause: a therapist pauses a client; a client pauses themselves."""
    return for_therapists(_pause, client_pause)


async def _pause(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    argument = _argument(update)
    name, days = argument, 0
    head, _, tail = argument.rpartition(" ")
    if head and tail.isdigit():
        name, days = head, int(tail)
    found = await _one_client(update, context, therapist, name, "pause")
    if found is None:
        return
    services = context.services
    async with _own_client(context, therapist, found.id, "paused",
                           detail=f"{days} days" if days else "until resumed") as (_, person):
        until = schedules.pause(person, days, services.clock)
        zone = schedules.client_zone(person, services.settings)
    if until is None:
        await say(update, context, messages.THERAPIST_PAUSED_OPEN, name=found.display_name)
    else:
        await say(update, context, messages.THERAPIST_PAUSED, name=found.display_name,
                  until=f"{until.astimezone(zone):%a %d %b %H:%M}")


def resume_command(client_resume: Handler) -> Handler:
    """/resume: a therapist resumes a client; a client resumes themselves."""
    return for_therapists(_resume, client_resume)


async def _resume(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    found = await _one_client(update, context, therapist, _argument(update), "resume")
    if found is None:
        return
    services = context.services
    async with _own_client(context, therapist, found.id, "resumed") as (_, person):
        resumed = schedules.resume(person, services.clock)
    await say(update, context, messages.THERAPIST_RESUMED if resumed else messages.THERAPIST_NOT_PAUSED,
              name=found.display_name)


async def alert_list(update: Update, context: InterludeContext) -> None:
    """Open alerts, each with a button to acknowledge it."""
    await for_therapists(_alerts, _not_for_clients)(update, context)


async def _alerts(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    services = context.services
    async with services.db.transaction() as session:
        rows = await alerts.for_therapist(session, therapist.id, open_only=True, limit=20)
        await audit.record(session, _actor(therapist), "viewed_alerts", services.clock)
    if not rows:
        await say(update, context, messages.THERAPIST_NO_ALERTS)
        return
    for row in rows:
        label = CATEGORY_LABELS.get(row.category)
        await say(update, context, messages.THERAPIST_ALERT_LINE,
                  when=f"{row.created_at:%d %b %H:%M} UTC", name=row.client,
                  category=render(label) if label else row.category,
                  keyboard=buttons([(render(messages.THERAPIST_ACK), f"alert:ack:{row.id}")]))


async def acknowledge_button(update: Update, context: InterludeContext) -> None:
    """The Acknowledge button under an alert: only the alert's own therapist can press it."""
    query = update.callback_query
    assert query is not None and query.data is not None
    therapist = await current_therapist(update, context)
    parts = query.data.split(":")
    if therapist is None or len(parts) != 3 or not parts[2].isdigit():
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU))
        return
    services = context.services
    try:
        async with services.db.transaction() as session:
            await alerts.acknowledge(session, _actor(therapist), int(parts[2]), services.clock)
    except practice.NotFound:
        await query.answer(render(messages.BUTTON_NOT_FOR_YOU))
        return
    await query.answer(render(messages.THERAPIST_ACKED))
    try:
        await drop_keyboard(update)
    except TelegramError as error:  # acknowledged all the same; the button stays on the message
        log.warning("could not remove an alert's button (%s)", type(error).__name__)


async def dashboard(update: Update, context: InterludeContext) -> None:
    """A one-time sign-in link for the web dashboard."""
    await for_therapists(_dashboard, _not_for_clients)(update, context)


async def _dashboard(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    services = context.services
    async with services.db.transaction() as session:
        token = await signin.issue_link(session, therapist.id, services.clock,
                                        services.settings.login_link_minutes)
    chat = update.effective_chat
    assert chat is not None
    # No link preview: a preview fetches the page, and the link is for the therapist's browser.
    await context.bot.send_message(chat.id, render(
        messages.THERAPIST_LOGIN_LINK, minutes=f"{services.settings.login_link_minutes:g}",
        url=signin.login_url(services.settings.web_url, token)), disable_web_page_preview=True)


async def digest_command(update: Update, context: InterludeContext) -> None:
    """Choose the daily digest's time (or off), and whether it carries clients' words."""
    await for_therapists(_digest, _not_for_clients)(update, context)


async def _digest(update: Update, context: InterludeContext, therapist: Therapist) -> None:
    argument = _argument(update).lower().split()
    services = context.services
    async with services.db.transaction() as session:
        stored = await session.get(Therapist, therapist.id)
        assert stored is not None
        try:
            if argument[:1] == ["off"]:
                digest.configure(stored, None, stored.digest_with_text, None)
            elif argument[:1] == ["words"] and argument[1:2] in (["on"], ["off"]):
                digest.configure(stored, stored.digest_at, argument[1] == "on", None)
            elif len(argument) == 1:
                digest.configure(stored, argument[0], stored.digest_with_text, None)
            else:
                raise OnboardingError("")
        except OnboardingError:
            await say(update, context, messages.THERAPIST_DIGEST_HOW)
            return
        at, words = stored.digest_at, stored.digest_with_text
        zone = digest.zone_of(stored, services.settings).key
    if argument[:1] == ["words"]:
        await say(update, context, messages.THERAPIST_DIGEST_WORDS, state="on" if words else "off")
    elif at is None:
        await say(update, context, messages.THERAPIST_DIGEST_OFF)
    else:
        await say(update, context, messages.THERAPIST_DIGEST_SET, time=at, zone=zone)


async def _not_for_clients(update: Update, context: InterludeContext) -> None:
    from bot.handlers.fallback import unknown_command
    await unknown_command(update, context)


def compose_digest(found: digest.Digest) -> str:
    lines = [render(messages.DIGEST_HEAD), ""]
    if found.answered:
        lines.append(render(messages.DIGEST_ANSWERED, names=", ".join(
            f"{name} ({count})" for name, count in found.answered)))
    else:
        lines.append(render(messages.DIGEST_NONE_ANSWERED))
    if found.quiet:
        lines.append(render(messages.DIGEST_QUIET, names=", ".join(
            f"{name} ({days} days)" for name, days in found.quiet)))
    if found.open_alerts:
        lines.append(render(messages.DIGEST_ALERTS, items=", ".join(
            f"{name} ({render(CATEGORY_LABELS[c]) if c in CATEGORY_LABELS else c})"
            for name, c in found.open_alerts)))
    if found.excerpts:
        lines += ["", render(messages.DIGEST_WORDS)]
        lines += [f"• {name}: {words}" for name, words in found.excerpts]
    return "\n".join(lines)


async def send_due_digests(application: Application[..., ..., ..., ..., ..., ...],  # type: ignore[type-arg]
                           services: Services) -> int:
    """Each therapist whose digest time has come today gets it once; returns how many went."""
    now = services.clock.now()
    async with services.db.transaction() as session:
        due = [t.id for t in await session.scalars(select(Therapist).where(
            Therapist.digest_at.is_not(None), Therapist.telegram_user_id.is_not(None)))
            if digest.is_due(t, now, services.settings)]
    sent = 0
    for therapist_id in due:
        async with services.db.transaction() as session:
            therapist = await session.get(Therapist, therapist_id)
            assert therapist is not None and therapist.telegram_user_id is not None
            if not digest.is_due(therapist, now, services.settings):
                continue  # another process sent it
            found = await digest.compose(session, therapist, services.library, services.clock)
            digest.mark_sent(therapist, now, services.settings)
            await audit.record(session, Actor(therapist.id, "telegram"), "daily_digest",
                               services.clock, detail="with words" if found.excerpts else None)
            chat_id = therapist.telegram_user_id
        try:
            await application.bot.send_message(chat_id, compose_digest(found))
            sent += 1
        except TelegramError as error:
            log.warning("could not send a therapist's digest (%s)", type(error).__name__)
    return sent
