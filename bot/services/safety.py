"""Crisis alerts: recorded for the therapist, acknowledged, and counted so referrals are reportable."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import Alert, CheckIn, Client, NervousSystemState, Therapist
from bot.safety.rules import CATEGORIES, Category


@dataclass(frozen=True)
class RaisedAlert:
    id: int
    category: Category | str
    client_name: str
    therapist_telegram_id: int | None


async def raise_alert(session: AsyncSession, client: Client, category: Category | str,
                      reply_id: int | None, clock: Clock) -> RaisedAlert:
    therapist = await session.get(Therapist, client.therapist_id)
    assert therapist is not None
    alert = Alert(client_id=client.id, therapist_id=therapist.id, category=category,
                  reply_id=reply_id, created_at=clock.now())
    session.add(alert)
    await session.flush()
    return RaisedAlert(alert.id, category, client.display_name, therapist.telegram_user_id)


async def mark_notified(session: AsyncSession, alert_id: int, clock: Clock) -> None:
    alert = await session.get(Alert, alert_id)
    if alert is not None:
        alert.notified_at = clock.now()


ERASED = "(erased)"  # an alert about a client who has since erased their data


async def alerts(session: AsyncSession, *, open_only: bool = False) -> list[dict[str, object]]:
    """Alerts, newest first, with the client's name; for the admin and, later, the dashboard."""
    query = (select(Alert, Client.display_name).outerjoin(Client, Client.id == Alert.client_id)
             .order_by(Alert.created_at.desc()))
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    return [{"id": alert.id, "client_id": alert.client_id, "client": name or ERASED,
             "therapist_id": alert.therapist_id, "category": alert.category,
             "created_at": alert.created_at, "notified_at": alert.notified_at,
             "acknowledged_at": alert.acknowledged_at}
            for alert, name in (await session.execute(query)).all()]


async def acknowledge(session: AsyncSession, alert_id: int, clock: Clock) -> bool:
    """Mark an alert seen and handled; False if there is no such alert or it was already."""
    alert = await session.get(Alert, alert_id)
    if alert is None or alert.acknowledged_at is not None:
        return False
    alert.acknowledged_at = clock.now()
    return True


async def report(session: AsyncSession, start: datetime, end: datetime) -> dict[str, object]:
    """Crisis referrals in [start, end): counts by category and time to acknowledgement."""
    rows = list(await session.scalars(select(Alert).where(Alert.created_at >= start,
                                                          Alert.created_at < end)))
    waits = sorted((a.acknowledged_at - a.created_at).total_seconds() / 60
                   for a in rows if a.acknowledged_at is not None)
    return {
        "from": start, "to": end, "alerts": len(rows),
        "by_category": {c: sum(a.category == c for a in rows)
                        for c in (*CATEGORIES, *CHECKIN_PATTERNS, QUESTIONNAIRE_ITEM)},
        "open": sum(a.acknowledged_at is None for a in rows),
        "minutes_to_acknowledge": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "max": round(waits[-1], 1) if waits else None,
        },
    }



# Check-in patterns that call for care, as alert categories beside the crisis ones.
HIGH_ACTIVATION = "high_activation"
PROLONGED_SHUTDOWN = "prolonged_shutdown"
CHECKIN_PATTERNS = (HIGH_ACTIVATION, PROLONGED_SHUTDOWN)
# An answer a questionnaire marks for alerts (PHQ-9 item 9 above "not at all").
QUESTIONNAIRE_ITEM = "questionnaire_item"
REPEAT_AFTER = timedelta(hours=24)  # one alert of a kind a day is enough for a therapist


async def checkin_pattern(session: AsyncSession, client: Client, clock: Clock,
                          settings: Settings) -> str | None:
    """HIGH_ACTIVATION or PROLONGED_SHUTDOWN when the client's recent check-ins show it, once a day."""
    intensity = client.alert_intensity or settings.checkin_alert_intensity
    days = client.alert_shutdown_days or settings.checkin_alert_shutdown_days
    recent = list(await session.scalars(
        select(CheckIn).where(CheckIn.client_id == client.id, CheckIn.intensity.is_not(None))
        .order_by(CheckIn.recorded_at.desc()).limit(max(2, days * 3))))
    found = None
    if len(recent) >= 2 and all((c.intensity or 0) >= intensity for c in recent[:2]):
        found = HIGH_ACTIVATION
    else:
        zone = ZoneInfo(client.timezone or settings.default_timezone)
        today = clock.now().astimezone(zone).date()
        latest_by_day: dict[object, CheckIn] = {}
        for checkin in recent:  # newest first: the first seen each day is that day's latest
            latest_by_day.setdefault(checkin.recorded_at.astimezone(zone).date(), checkin)
        wanted = [today - timedelta(days=n) for n in range(days)]
        if all(day in latest_by_day and latest_by_day[day].state is NervousSystemState.SHUT_DOWN
               for day in wanted):
            found = PROLONGED_SHUTDOWN
    if found is None:
        return None
    already = await session.scalar(select(Alert.id).where(
        Alert.client_id == client.id, Alert.category == found,
        Alert.created_at > clock.now() - REPEAT_AFTER).limit(1))
    return None if already else found
