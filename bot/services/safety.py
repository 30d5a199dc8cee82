"""Crisis alerts: recorded for the therapist, and counted so crisis referrals are reportable."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import Alert, Client, Therapist
from bot.safety.rules import Category


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
