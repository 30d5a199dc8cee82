"""The audit log: every read of a client's data and every change, by whom and through what.

The review path writes here (dashboard, JSON API, therapist commands in Telegram, the CLI); the
practice admin reads it with `interlude audit`, and each therapist sees the entries about their
own clients in the dashboard. An entry names an action and ids, never client text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import AuditEntry, Client


@dataclass(frozen=True)
class Actor:
    """Who is acting: a therapist (by id), or the admin at the command line (None)."""

    therapist_id: int | None
    channel: str  # web, api, telegram, cli


ADMIN = Actor(None, "cli")


async def record(session: AsyncSession, actor: Actor, action: str, clock: Clock, *,
                 client_id: int | None = None, detail: str | None = None) -> None:
    session.add(AuditEntry(at=clock.now(), therapist_id=actor.therapist_id, channel=actor.channel,
                           action=action, client_id=client_id,
                           detail=detail[:200] if detail else None))


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    therapist_id: int | None
    channel: str
    action: str
    client_id: int | None
    client: str | None
    detail: str | None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "at": self.at.isoformat(), "therapist_id": self.therapist_id,
                "channel": self.channel, "action": self.action, "client_id": self.client_id,
                "client": self.client, "detail": self.detail}


async def entries(session: AsyncSession, *, therapist_id: int | None = None,
                  client_id: int | None = None, limit: int = 500) -> list[AuditRow]:
    """Newest first. With therapist_id: the entries about that therapist's own clients only
    (whoever acted: an admin's read of their client is theirs to see too)."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    own: dict[int, str] = {}
    if therapist_id is not None:
        own = {c.id: c.display_name for c in await session.scalars(
            select(Client).where(Client.therapist_id == therapist_id))}
        query = query.where(AuditEntry.client_id.in_(list(own)))
    if client_id is not None:
        query = query.where(AuditEntry.client_id == client_id)
    rows = list(await session.scalars(query))
    if therapist_id is None:
        ids = {r.client_id for r in rows if r.client_id is not None}
        own = {c.id: c.display_name for c in await session.scalars(
            select(Client).where(Client.id.in_(ids)))} if ids else {}
    return [AuditRow(r.id, r.at, r.therapist_id, r.channel, r.action, r.client_id,
                     own.get(r.client_id) if r.client_id is not None else None, r.detail)
            for r in rows]
