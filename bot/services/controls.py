"""What a client controls: pauses, time zone, quiet hours, and what the bot waits to be told."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import (
    Client,
    ClientStatus,
    CouplePartner,
    Delivery,
    DeliveryStatus,
    Enrolment,
)
from bot.library.schema import parse_hhmm
from bot.scheduling.timing import QuietHours

MAX_PAUSE_DAYS = 90
# Far enough to mean "until I say /resume", near enough for every database's datetime.
INDEFINITELY = timedelta(days=365 * 50)


class Awaiting(StrEnum):
    """What the bot is waiting for the client to type next."""

    TIMEZONE = "timezone"
    TIMEZONE_THEN_QUIET = "timezone_then_quiet"  # during onboarding: quiet hours come next
    QUIET_HOURS = "quiet_hours"
    QUIET_HOURS_THEN_DONE = "quiet_hours_then_done"  # the last step of onboarding


def is_paused(client: Client, now: datetime) -> bool:
    return client.paused_until is not None and client.paused_until > now


def parse_pause_days(argument: str | None) -> int | None:
    """Days to pause (0 = until /resume) from '/pause', '/pause 3'; None if unreadable."""
    if argument is None or not argument.strip():
        return 0
    text = argument.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAUSE_DAYS:
        return None
    return int(text)


def pause(client: Client, days: int, clock: Clock) -> datetime | None:
    """Pause prompts; returns the end of the pause, or None for an open-ended one."""
    now = clock.now()
    client.paused_until = now + (timedelta(days=days) if days else INDEFINITELY)
    return client.paused_until if days else None


def resume(client: Client, clock: Clock) -> bool:
    """End a pause; False when there was none."""
    if not is_paused(client, clock.now()):
        return False
    client.paused_until = None
    return True


async def set_timezone(session: AsyncSession, client: Client, zone: str, clock: Clock) -> None:
    """Change the zone and re-plan what has not been sent yet in the new local time."""
    if client.timezone == zone:
        return
    client.timezone = zone
    await replan(session, client, clock)


async def replan(session: AsyncSession, client: Client, clock: Clock) -> None:
    """Forget pending planned prompts so the planner computes them again from now."""
    # Planned deliveries that have not gone out are re-created by the planner; what was sent
    # keeps its dedupe key, so the same day's step is never sent twice.
    await session.execute(delete(Delivery).where(
        Delivery.client_id == client.id, Delivery.status == DeliveryStatus.PENDING,
        Delivery.enrolment_id.is_not(None)))
    # How far each pool was drawn is counted again from what is left, so the prompts deleted
    # here are drawn again rather than skipped.
    await session.execute(update(Enrolment).where(
        Enrolment.client_id == client.id, Enrolment.ended_at.is_(None),
        Enrolment.planned_through.is_not(None)).values(planned_through=clock.now(),
                                                         pool_draws=None))
    # A couple's programs too: this partner's side of each open pair is planned again.
    await session.execute(update(Enrolment).where(
        Enrolment.couple_id.in_(select(CouplePartner.couple_id).where(
            CouplePartner.open_client_id == client.id)),
        Enrolment.ended_at.is_(None), Enrolment.planned_through.is_not(None),
    ).values(planned_through=clock.now()))


_QUIET = re.compile(
    r"^\s*(\d{1,2})[:.](\d{2})\s*(?:-|–|—|to|until|bis|a)\s*(\d{1,2})[:.](\d{2})\s*$",
    re.IGNORECASE,
)


def parse_quiet_hours(text: str) -> tuple[str, str] | None:
    """('22:00', '07:30') from '22:00-07:30', '22.00 – 7.30' or '22:00 to 07:30'; else None."""
    match = _QUIET.match(text)
    if not match:
        return None
    start = f"{int(match[1]):02d}:{match[2]}"
    end = f"{int(match[3]):02d}:{match[4]}"
    try:
        parse_hhmm(start)
        parse_hhmm(end)
    except ValueError:
        return None
    if start == end:
        return None
    return start, end


async def set_quiet_hours(session: AsyncSession, client: Client, start: str, end: str,
                          clock: Clock) -> None:
    client.quiet_start, client.quiet_end = start, end
    await replan(session, client, clock)


def can_receive(client: Client, now: datetime) -> bool:
    """Whether a prompt may go to this client now (consent, reachability, pause)."""
    return (client.status is ClientStatus.ACTIVE and client.telegram_user_id is not None
            and client.timezone is not None and not is_paused(client, now))


class QuietTimes(Protocol):
    """What quiet hours need of a client: their zone and their night."""

    timezone: str | None
    quiet_start: str
    quiet_end: str


def quiet_release(client: QuietTimes, moment: datetime) -> datetime:
    """`moment`, or the end of the client's quiet hours if it falls inside them."""
    zone = ZoneInfo(client.timezone or "UTC")
    return QuietHours.parse(client.quiet_start, client.quiet_end).release(moment, zone)
