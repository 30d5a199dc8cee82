"""Building people and programs in a real database through the same services the bot uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, Delivery
from bot.library import Library
from bot.scheduling.dispatcher import ConsentRequest, Outbound, RetryLater, SendError
from bot.services import controls, onboarding


async def active_client(
    db: Database,
    clock: FakeClock,
    settings: Settings,
    library: Library,
    *,
    program: str | None = "evening-checkin",
    zone: str = "Europe/Berlin",
    anchor: datetime | None = None,
    telegram_id: int = 5001,
    name: str = "Sam",
    therapist_id: int | None = None,
) -> int:
    """An invited client who consented and set a time zone (quiet hours left at the default);
    with a therapist of their own unless `therapist_id` names one."""
    async with db.transaction() as session:
        if therapist_id is None:
            therapist_id = (await onboarding.add_therapist(session, "Dr Rivera", clock, settings)).id
        invite = await onboarding.invite_client(
            session,
            therapist_id=therapist_id,
            name=name,
            clock=clock,
            settings=settings,
            library=library,
            program=program,
            anchor=anchor,
            timezone=zone,
        )
        await onboarding.give_consent(session, invite.token, telegram_id, "en", clock, settings, library)
        client = await session.get(Client, invite.id)
        assert client is not None
        await controls.set_timezone(session, client, zone, clock)
    return invite.id


async def deliveries(db: Database, client_id: int | None = None) -> list[Delivery]:
    async with db.transaction() as session:
        query = select(Delivery).order_by(Delivery.due_at, Delivery.id)
        if client_id is not None:
            query = query.where(Delivery.client_id == client_id)
        return list(await session.scalars(query))


class RecordingSender:
    """A Sender that keeps what it was asked to send; it can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.reminders: list[tuple[int, int]] = []
        self.consent_requests: list[ConsentRequest] = []
        self.failures: list[SendError] = []  # raised in order, one per call, before succeeding
        self._next_id = 100

    async def send_prompt(self, item: Outbound) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(item)
        self._next_id += 1
        return self._next_id

    async def send_reminder(self, chat_id: int, reply_to_message_id: int, language: Any) -> int:
        self.reminders.append((chat_id, reply_to_message_id))
        self._next_id += 1
        return self._next_id

    async def send_consent_request(self, item: ConsentRequest) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.consent_requests.append(item)
        self._next_id += 1
        return self._next_id


__all__ = ["RecordingSender", "RetryLater", "active_client", "deliveries"]
