"""A therapist's own clients: finding them, their status at a glance, and the one gate to their data.

The review path (dashboard, JSON API, therapist commands) reaches a client only through
`client_for`, which refuses someone else's client exactly as it refuses a missing one and writes
the audit entry. Names are matched in Python, never in SQL: they will be encrypted at rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import (
    Alert,
    Client,
    ClientStatus,
    Delivery,
    Enrolment,
    Invite,
    Reply,
    Therapist,
)
from bot.library import Library
from bot.scheduling.planner import CUSTOM_PROGRAM
from bot.services import audit
from bot.services.audit import Actor
from bot.services.controls import is_paused

ANSWER_RATE_DAYS = 14
QUIET_DAYS = 3  # a client who has not answered for this long has "gone quiet"


class NotFound(Exception):
    """No such thing for this therapist: missing, or someone else's (never told apart)."""


async def therapist(session: AsyncSession, therapist_id: int) -> Therapist:
    found = await session.get(Therapist, therapist_id)
    if found is None:
        raise NotFound(f"there is no therapist {therapist_id}")
    return found


async def client_for(session: AsyncSession, actor: Actor, client_id: int, action: str,
                     clock: Clock, *, detail: str | None = None) -> Client:
    """The client, if the actor may see them (their own, or any for the admin); audited."""
    client = await session.get(Client, client_id)
    if client is None or (actor.therapist_id is not None
                          and client.therapist_id != actor.therapist_id):
        raise NotFound(f"there is no client {client_id}")
    await audit.record(session, actor, action, clock, client_id=client.id, detail=detail)
    return client


def display_status(client: Client, now: datetime) -> str:
    """invited, active, paused, stopped or unreachable: what a therapist needs to know."""
    if client.status is ClientStatus.ACTIVE and is_paused(client, now):
        return "paused"
    return client.status.value


@dataclass(frozen=True)
class ClientSummary:
    id: int
    name: str
    status: str
    programs: list[str]
    timezone: str | None
    paused_until: datetime | None
    last_reply_at: datetime | None
    sent_recently: int
    answered_recently: int
    open_alerts: int
    created_at: datetime
    invite_expires_at: datetime | None

    @property
    def answer_rate(self) -> float | None:
        return self.answered_recently / self.sent_recently if self.sent_recently else None

    def quiet_for(self, now: datetime) -> int | None:
        """Whole days since the last reply, for an active client (None otherwise)."""
        if self.status != "active":
            return None
        since = self.last_reply_at or self.created_at
        return (now - since).days

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status, "programs": self.programs,
            "timezone": self.timezone,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "last_reply_at": self.last_reply_at.isoformat() if self.last_reply_at else None,
            "answer_rate_14d": round(self.answer_rate, 3) if self.answer_rate is not None else None,
            "prompts_sent_14d": self.sent_recently, "prompts_answered_14d": self.answered_recently,
            "open_alerts": self.open_alerts,
        }


def program_title(enrolment: Enrolment, library: Library) -> str:
    if enrolment.program_key == CUSTOM_PROGRAM and enrolment.custom:
        return f"Personal prompt ({enrolment.custom['prompt']['key']})"
    program = library.programs.get(enrolment.program_key)
    return program.title if program else enrolment.program_key


async def summaries(session: AsyncSession, therapist_id: int, library: Library,
                    clock: Clock) -> list[ClientSummary]:
    """Every client of this therapist with status, programs, last reply, answer rate, alerts."""
    now = clock.now()
    clients = list(await session.scalars(
        select(Client).where(Client.therapist_id == therapist_id).order_by(Client.id)))
    ids = [c.id for c in clients]
    if not ids:
        return []
    last_reply = dict((await session.execute(
        select(Reply.client_id, func.max(Reply.created_at)).where(Reply.client_id.in_(ids))
        .group_by(Reply.client_id))).all())
    since = now - timedelta(days=ANSWER_RATE_DAYS)
    sent: dict[int, int] = {}
    answered: dict[int, int] = {}
    for client_id, answered_at in (await session.execute(
            select(Delivery.client_id, Delivery.answered_at).where(
                Delivery.client_id.in_(ids), Delivery.sent_at >= since))).all():
        sent[client_id] = sent.get(client_id, 0) + 1
        answered[client_id] = answered.get(client_id, 0) + (answered_at is not None)
    alerts = dict((await session.execute(
        select(Alert.client_id, func.count()).where(Alert.client_id.in_(ids),
                                                   Alert.acknowledged_at.is_(None))
        .group_by(Alert.client_id))).all())
    programs: dict[int, list[str]] = {}
    for enrolment in await session.scalars(select(Enrolment).where(
            Enrolment.client_id.in_(ids), Enrolment.ended_at.is_(None)).order_by(Enrolment.id)):
        if enrolment.ends_at is None or enrolment.ends_at > now or enrolment.planned_through is None:
            programs.setdefault(enrolment.client_id, []).append(program_title(enrolment, library))
    invites = dict((await session.execute(
        select(Invite.client_id, func.max(Invite.expires_at)).where(
            Invite.client_id.in_(ids), Invite.used_at.is_(None)).group_by(Invite.client_id)))
        .all())
    last_reply = {k: _aware(v) for k, v in last_reply.items()}
    return [ClientSummary(
        c.id, c.display_name, display_status(c, now), programs.get(c.id, []), c.timezone,
        c.paused_until if is_paused(c, now) else None, last_reply.get(c.id), sent.get(c.id, 0),
        answered.get(c.id, 0), alerts.get(c.id, 0), c.created_at,
        _aware(invites.get(c.id)) if c.status is ClientStatus.INVITED else None) for c in clients]


def _aware(value: Any) -> datetime | None:
    # Aggregates bypass the column type, so SQLite hands back naive UTC (or a string).
    from datetime import UTC
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def matching(rows: list[ClientSummary], *, search: str = "", status: str = "",
             program: str = "", alerts_only: bool = False, quiet_only: bool = False,
             now: datetime | None = None) -> list[ClientSummary]:
    """Filter a client list as the dashboard's filters and the search box ask."""
    needle = search.strip().casefold()
    result = []
    for row in rows:
        if needle and needle not in row.name.casefold() and needle != str(row.id):
            continue
        if status and row.status != status:
            continue
        if program and not any(program.casefold() in p.casefold() for p in row.programs):
            continue
        if alerts_only and not row.open_alerts:
            continue
        if quiet_only and (now is None or (row.quiet_for(now) or 0) < QUIET_DAYS):
            continue
        result.append(row)
    return result


async def find_by_name(session: AsyncSession, therapist_id: int, name: str) -> list[Client]:
    """The therapist's clients a typed name points at: an exact name (or id) first, else every
    name that starts with it, else every name that contains it. Matched in Python."""
    wanted = name.strip().lstrip("#").casefold()
    if not wanted:
        return []
    clients = list(await session.scalars(
        select(Client).where(Client.therapist_id == therapist_id).order_by(Client.id)))
    for test in (lambda c: c.display_name.casefold() == wanted or str(c.id) == wanted,
                 lambda c: c.display_name.casefold().startswith(wanted),
                 lambda c: wanted in c.display_name.casefold()):
        found = [c for c in clients if test(c)]
        if found:
            # Someone who stopped is found only when nobody current matches.
            current = [c for c in found if c.status is not ClientStatus.STOPPED]
            return current or found
    return []
