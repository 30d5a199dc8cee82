"""A therapist's own alerts: listing them and acknowledging one (review path).

The admin's view of every alert is bot.services.safety; this one never shows another
therapist's clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import Alert, Client
from bot.services import audit, safety
from bot.services.audit import Actor
from bot.services.onboarding import OnboardingError
from bot.services.practice import NotFound


@dataclass(frozen=True)
class AlertRow:
    id: int
    client_id: int
    client: str
    category: str
    created_at: datetime
    acknowledged_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "client_id": self.client_id, "client": self.client,
                "category": self.category, "created_at": self.created_at.isoformat(),
                "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at
                else None}


async def for_therapist(session: AsyncSession, therapist_id: int, *,
                        open_only: bool = False, limit: int = 200) -> list[AlertRow]:
    query = (select(Alert).where(Alert.therapist_id == therapist_id)
             .order_by(Alert.created_at.desc()).limit(limit))
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    rows = list(await session.scalars(query))
    names = {c.id: c.display_name for c in await session.scalars(
        select(Client).where(Client.id.in_({a.client_id for a in rows})))} if rows else {}
    return [AlertRow(a.id, a.client_id, names.get(a.client_id, "?"), a.category, a.created_at,
                     a.acknowledged_at) for a in rows]


async def acknowledge(session: AsyncSession, actor: Actor, alert_id: int, clock: Clock) -> bool:
    """Acknowledge one of the actor's own alerts; False if it already was."""
    alert = await session.get(Alert, alert_id)
    if alert is None or (actor.therapist_id is not None and alert.therapist_id != actor.therapist_id):
        raise NotFound(f"there is no alert {alert_id}")
    done = await safety.acknowledge(session, alert_id, clock)
    await audit.record(session, actor, "acknowledged_alert", clock, client_id=alert.client_id,
                       detail=f"alert {alert_id}")
    return done


def set_thresholds(client: Client, intensity: int | None, shutdown_days: int | None) -> None:
    """A client's own check-in thresholds; None returns to the practice's."""
    if intensity is not None and not 1 <= intensity <= 10:
        raise OnboardingError("the intensity threshold is between 1 and 10")
    if shutdown_days is not None and not 1 <= shutdown_days <= 14:
        raise OnboardingError("the days shut down are between 1 and 14")
    client.alert_intensity = intensity
    client.alert_shutdown_days = shutdown_days


def thresholds(client: Client, settings: Settings) -> tuple[int, int]:
    """(intensity, shut-down days) that alert for this client."""
    return (client.alert_intensity or settings.checkin_alert_intensity,
            client.alert_shutdown_days or settings.checkin_alert_shutdown_days)
