"""Crisis alerts: recorded for the therapist, acknowledged, and counted so referrals are reportable."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import Alert, Client, Therapist
from bot.safety.rules import CATEGORIES, Category


@dataclass(frozen=True)
class RaisedAlert:
    id: int
    category: Category
    client_name: str
    therapist_telegram_id: int | None


async def raise_alert(session: AsyncSession, client: Client, category: Category,
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


async def alerts(session: AsyncSession, *, open_only: bool = False) -> list[dict[str, object]]:
    """Alerts, newest first, with the client's name; for the admin and, later, the dashboard."""
    query = (select(Alert, Client.display_name).join(Client, Client.id == Alert.client_id)
             .order_by(Alert.created_at.desc()))
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    return [{"id": alert.id, "client_id": alert.client_id, "client": name,
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
        "by_category": {c: sum(a.category == c for a in rows) for c in CATEGORIES},
        "open": sum(a.acknowledged_at is None for a in rows),
        "minutes_to_acknowledge": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "max": round(waits[-1], 1) if waits else None,
        },
    }
