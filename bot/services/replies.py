"""Storing what clients answer, against the prompt it answers (inbound path, last step).

A reply finds its prompt by, in order: the Telegram message it replies to, the button's own
delivery, or the client's most recent open prompt. Every write is idempotent, so a replayed
update stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import messages
from bot.clock import Clock
from bot.db.models import (
    OPEN_STATUSES,
    CheckIn,
    Client,
    Delivery,
    DeliveryStatus,
    NervousSystemState,
    Reply,
    ReplyKind,
    ReplyRevision,
    VoiceNote,
)
from bot.library.schema import ResponseType

# Check-in progress: 0 = waiting for the state, 1 = for the intensity, 2 = words welcome.
CHECKIN_STATE, CHECKIN_INTENSITY, CHECKIN_WORDS = 0, 1, 2


@dataclass(frozen=True)
class Outcome:
    """What happened, for the handler to say: a catalog message and what to ask next."""

    thanks: str | None
    delivery: Delivery | None = None
    stored: bool = True
    next_question: int | None = None  # a multi-step prompt's next question to send
    reply_id: int | None = None
    closed: bool = False  # the prompt had closed; nothing was stored
    foreign: bool = False  # the button belongs to someone else's prompt; nothing was stored


def questions(delivery: Delivery) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = delivery.prompt.get("steps") or []
    return steps


def response_type(delivery: Delivery) -> ResponseType:
    return ResponseType(delivery.prompt["response"])


async def open_delivery(session: AsyncSession, client: Client, clock: Clock,
                        reply_to_message_id: int | None = None) -> tuple[Delivery | None, bool]:
    """The prompt a message answers, and whether it already has words (read with it, as
    whether to say "thanks for adding more" depends on it)."""
    has_words = exists().where(Reply.delivery_id == Delivery.id,
                               Reply.kind.in_((ReplyKind.TEXT, ReplyKind.VOICE)))
    if reply_to_message_id is not None:
        replied = (await session.execute(select(Delivery, has_words).where(
            Delivery.client_id == client.id,
            or_(Delivery.telegram_message_id == reply_to_message_id,
                Delivery.reminder_message_id == reply_to_message_id)).limit(1))).first()
        if replied is not None:
            return replied[0], bool(replied[1])
    latest = (await session.execute(
        select(Delivery, has_words).where(
            Delivery.client_id == client.id, Delivery.status.in_(OPEN_STATUSES),
            Delivery.closed_at.is_(None), Delivery.expires_at > clock.now())
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(1))).first()
    return (latest[0], bool(latest[1])) if latest is not None else (None, False)


def _answered(delivery: Delivery, clock: Clock) -> None:
    if delivery.status is DeliveryStatus.SENT:
        delivery.status = DeliveryStatus.ANSWERED
    if delivery.answered_at is None:
        delivery.answered_at = clock.now()
    delivery.reminder_at = None


async def _already_stored(session: AsyncSession, client: Client, message_id: int) -> Reply | None:
    return await session.scalar(select(Reply).where(
        Reply.client_id == client.id, Reply.telegram_message_id == message_id))


async def _said_again(session: AsyncSession, reply: Reply) -> Outcome:
    """A message stored before, handled again (the inbox replays it after a crash or a failed
    thanks): nothing is stored, and the client hears again what they heard, or would have
    heard, the first time, since the thanks may never have reached them."""
    delivery = await session.get(Delivery, reply.delivery_id) if reply.delivery_id else None
    if delivery is None:
        return Outcome(thanks=messages.UNPROMPTED_MESSAGE, stored=False, reply_id=reply.id)
    earlier = await session.scalar(select(Reply.id).where(
        Reply.delivery_id == delivery.id, Reply.id < reply.id,
        Reply.kind.in_((ReplyKind.TEXT, ReplyKind.VOICE)),
        *([Reply.question == reply.question] if questions(delivery) else [])).limit(1))
    thanks: str | None = messages.THANKS_MORE_WORDS if earlier is not None else (
        messages.THANKS_VOICE if reply.kind is ReplyKind.VOICE else messages.THANKS_WORDS)
    next_question = None
    if response_type(delivery) is ResponseType.MULTI_STEP and earlier is None:
        total = len(questions(delivery))
        if reply.question + 1 < total:
            next_question, thanks = reply.question + 1, None
        else:
            thanks = messages.STEPS_DONE
    return Outcome(thanks=thanks, delivery=delivery, stored=False, next_question=next_question,
                   reply_id=reply.id)


async def record_message(session: AsyncSession, client: Client, clock: Clock, *,
                         message_id: int, text: str | None = None,
                         voice_file_id: str | None = None, voice_duration: int | None = None,
                         reply_to_message_id: int | None = None) -> Outcome:
    """Words or a voice note from the client."""
    kind = ReplyKind.VOICE if voice_file_id else ReplyKind.TEXT
    stored = await _already_stored(session, client, message_id)
    if stored is not None:
        return await _said_again(session, stored)
    delivery, has_words = await open_delivery(session, client, clock, reply_to_message_id)

    question, next_question, thanks = 0, None, (
        messages.THANKS_VOICE if kind is ReplyKind.VOICE else messages.THANKS_WORDS)
    if delivery is None:
        thanks = messages.UNPROMPTED_MESSAGE
    elif response_type(delivery) is ResponseType.MULTI_STEP:
        total = len(questions(delivery))
        question = min(delivery.progress, total - 1)
        if delivery.progress < total:
            delivery.progress += 1
            if delivery.progress < total:
                next_question, thanks = delivery.progress, None
            else:
                thanks = messages.STEPS_DONE
        else:
            thanks = messages.THANKS_MORE_WORDS
    elif delivery.answered_at is not None and has_words:
        thanks = messages.THANKS_MORE_WORDS

    reply = Reply(client_id=client.id, delivery_id=delivery.id if delivery else None,
                  question=question, kind=kind, text=text, telegram_message_id=message_id,
                  voice_file_id=voice_file_id, voice_duration=voice_duration,
                  created_at=clock.now())
    session.add(reply)
    if delivery is not None:
        _answered(delivery, clock)
    await session.flush()
    return Outcome(thanks=thanks, delivery=delivery, next_question=next_question, reply_id=reply.id)


async def store_voice_content(session: AsyncSession, client: Client, message_id: int,
                              content: bytes, mime_type: str) -> None:
    reply = await session.scalar(select(Reply).where(
        Reply.client_id == client.id, Reply.telegram_message_id == message_id))
    if reply is not None and await session.get(VoiceNote, reply.id) is None:
        session.add(VoiceNote(reply_id=reply.id, mime_type=mime_type, content=content))


async def record_edit(session: AsyncSession, client: Client, clock: Clock, *,
                      message_id: int, text: str) -> bool:
    """An edited message updates the stored reply and keeps what it said before."""
    reply = await session.scalar(select(Reply).where(
        Reply.client_id == client.id, Reply.telegram_message_id == message_id))
    if reply is None or reply.text == text:
        return False
    session.add(ReplyRevision(reply_id=reply.id, text=reply.text, replaced_at=clock.now()))
    reply.text = text
    reply.edited_at = clock.now()
    return True


async def _button_delivery(session: AsyncSession, client: Client, delivery_id: int,
                           clock: Clock) -> Delivery | Outcome:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id:
        return Outcome(thanks=None, stored=False, foreign=True)
    if delivery.status not in OPEN_STATUSES or delivery.closed_at is not None \
            or delivery.expires_at <= clock.now():
        return Outcome(thanks=messages.PROMPT_CLOSED, delivery=delivery, stored=False,
                       closed=True)
    return delivery


async def record_button(session: AsyncSession, client: Client, clock: Clock, *,
                        delivery_id: int, question: int, option: int) -> Outcome:
    """A tapped choice or scale button; tapping again changes the answer."""
    found = await _button_delivery(session, client, delivery_id, clock)
    if isinstance(found, Outcome):
        return found
    delivery = found
    spec: dict[str, Any] = delivery.prompt
    if response_type(delivery) is ResponseType.MULTI_STEP:
        steps = questions(delivery)
        if not 0 <= question < len(steps):
            return Outcome(thanks=None, stored=False, foreign=True)
        spec = steps[question]
    elif question != 0:
        return Outcome(thanks=None, stored=False, foreign=True)

    value = _option_value(spec, option)
    if value is None:
        return Outcome(thanks=None, stored=False, foreign=True)
    kind = ReplyKind.CHOICE if spec.get("response") == ResponseType.CHOICE else ReplyKind.SCALE
    reply = await session.scalar(select(Reply).where(
        Reply.delivery_id == delivery.id, Reply.question == question, Reply.kind == kind,
        Reply.button == 1))
    if reply is None:
        session.add(Reply(client_id=client.id, delivery_id=delivery.id, question=question,
                          kind=kind, value=value, button=1, created_at=clock.now()))
    elif reply.value != value:
        session.add(ReplyRevision(reply_id=reply.id, text=reply.value, replaced_at=clock.now()))
        reply.value, reply.edited_at = value, clock.now()
    _answered(delivery, clock)

    next_question = None
    thanks: str | None = messages.THANKS_CHOICE
    if response_type(delivery) is ResponseType.MULTI_STEP and question == delivery.progress:
        delivery.progress += 1
        if delivery.progress < len(questions(delivery)):
            next_question, thanks = delivery.progress, None
        else:
            thanks = messages.STEPS_DONE
    await session.flush()
    return Outcome(thanks=thanks, delivery=delivery, next_question=next_question)


def _option_value(spec: dict[str, Any], option: int) -> str | None:
    if spec.get("response") == ResponseType.CHOICE:
        choices = spec.get("choices") or []
        return str(choices[option]) if 0 <= option < len(choices) else None
    if spec.get("response") == ResponseType.SCALE:
        scale = spec.get("scale") or {"min": 0, "max": 10}
        return str(option) if scale["min"] <= option <= scale["max"] else None
    return None


async def record_checkin(session: AsyncSession, client: Client, clock: Clock, *,
                         delivery_id: int, state: NervousSystemState | None = None,
                         intensity: int | None = None) -> Outcome:
    """A check-in button: first the state, then the intensity (either may be changed)."""
    found = await _button_delivery(session, client, delivery_id, clock)
    if isinstance(found, Outcome):
        return found
    delivery = found
    if response_type(delivery) is not ResponseType.CHECKIN or (state is None) == (
            intensity is None) or (intensity is not None and not 0 <= intensity <= 10):
        return Outcome(thanks=None, stored=False, foreign=True)
    checkin = await session.scalar(select(CheckIn).where(CheckIn.delivery_id == delivery.id))
    if checkin is None:
        checkin = CheckIn(client_id=client.id, delivery_id=delivery.id, recorded_at=clock.now())
        session.add(checkin)
    if state is not None:
        checkin.state = state
        delivery.progress = max(delivery.progress, CHECKIN_INTENSITY)
        thanks = None
    else:
        if checkin.state is None:
            return Outcome(thanks=None, stored=False, foreign=True)
        checkin.intensity = intensity
        delivery.progress = CHECKIN_WORDS
        thanks = messages.CHECKIN_WORDS
    checkin.recorded_at = clock.now()
    _answered(delivery, clock)
    await session.flush()
    return Outcome(thanks=thanks, delivery=delivery)


async def checkin_for(session: AsyncSession, delivery_id: int) -> CheckIn | None:
    return await session.scalar(select(CheckIn).where(CheckIn.delivery_id == delivery_id))
