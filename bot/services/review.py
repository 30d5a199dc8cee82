"""The review path: what clients answered, one-off prompts, and facts for deep links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import insert_on_conflict
from bot.db.models import AppState, CheckIn, Client, ClientStatus, Delivery, Reply, Therapist
from bot.library import Library
from bot.scheduling.planner import new_delivery
from bot.services.onboarding import OnboardingError

BOT_USERNAME = "bot_username"


async def remember_bot_username(session: AsyncSession, username: str | None) -> None:
    if not username:
        return
    # One statement, so that bot processes starting together each write it without a clash.
    insert = insert_on_conflict(session.get_bind().dialect)
    await session.execute(insert(AppState).values(key=BOT_USERNAME, value=username)
                          .on_conflict_do_update(index_elements=["key"], set_={"value": username}))


async def bot_username(session: AsyncSession) -> str | None:
    state = await session.get(AppState, BOT_USERNAME)
    return state.value if state else None


def deep_link(username: str, token: str) -> str:
    return f"https://t.me/{username}?start={token}"


async def send_now(session: AsyncSession, *, client_id: int, prompt_key: str, library: Library,
                   clock: Clock, settings: Settings) -> Delivery:
    """A therapist's "send this now": a delivery due at once (quiet hours still apply)."""
    client = await session.get(Client, client_id)
    if client is None:
        raise OnboardingError(f"there is no client {client_id}")
    if client.status is not ClientStatus.ACTIVE:
        raise OnboardingError(f"client {client_id} is {client.status.value}; "
                              "prompts go only to clients who have consented and not stopped")
    prompt = library.prompts.get(prompt_key)
    if prompt is None:
        raise OnboardingError(f"there is no prompt {prompt_key!r} (see `interlude prompts list`)")
    delivery = new_delivery(client, prompt, scheduled_for=clock.now(), settings=settings)
    session.add(delivery)
    await session.flush()
    return delivery


@dataclass(frozen=True)
class AnswerRecord:
    """One prompt and what the client answered to it (or a message sent without a prompt)."""

    delivery_id: int | None
    prompt_key: str | None
    prompt_text: str | None
    sent_at: datetime | None
    status: str | None
    checkin: dict[str, Any] | None
    replies: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id, "prompt_key": self.prompt_key,
            "prompt_text": self.prompt_text,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "status": self.status, "checkin": self.checkin, "replies": self.replies,
        }


async def answers(session: AsyncSession, client_id: int) -> list[AnswerRecord]:
    """Everything a client answered, prompt by prompt, oldest first."""
    if await session.get(Client, client_id) is None:
        raise OnboardingError(f"there is no client {client_id}")
    deliveries = {d.id: d for d in await session.scalars(
        select(Delivery).where(Delivery.client_id == client_id, Delivery.sent_at.is_not(None)))}
    checkins = {c.delivery_id: c for c in await session.scalars(
        select(CheckIn).where(CheckIn.client_id == client_id))}
    replies = list(await session.scalars(
        select(Reply).where(Reply.client_id == client_id).order_by(Reply.created_at, Reply.id)))

    grouped: dict[int | None, list[Reply]] = {}
    for reply in replies:
        grouped.setdefault(reply.delivery_id, []).append(reply)
    records = []
    for delivery in sorted(deliveries.values(), key=lambda d: (d.sent_at, d.id)):
        checkin = checkins.get(delivery.id)
        if delivery.id not in grouped and checkin is None:
            continue
        records.append(AnswerRecord(
            delivery.id, delivery.prompt_key, delivery.prompt.get("text"), delivery.sent_at,
            delivery.status.value,
            {"state": checkin.state.value if checkin.state else None,
             "intensity": checkin.intensity} if checkin else None,
            [_reply_json(r) for r in grouped.get(delivery.id, [])]))
    for reply in grouped.get(None, []):
        records.append(AnswerRecord(None, None, None, None, None, None, [_reply_json(reply)]))
    return records


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {
        "id": reply.id, "kind": reply.kind.value, "question": reply.question, "text": reply.text,
        "value": reply.value, "voice_seconds": reply.voice_duration,
        "at": reply.created_at.isoformat(),
        "edited_at": reply.edited_at.isoformat() if reply.edited_at else None,
    }


async def therapists(session: AsyncSession) -> list[Therapist]:
    return list(await session.scalars(select(Therapist).order_by(Therapist.id)))


async def clients(session: AsyncSession, therapist_id: int | None = None) -> list[Client]:
    query = select(Client).order_by(Client.id)
    if therapist_id is not None:
        query = query.where(Client.therapist_id == therapist_id)
    return list(await session.scalars(query))
