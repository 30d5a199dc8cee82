"""Storing what clients answer, against the prompt it answers (inbound path, last step).

A reply finds its prompt by, in order: the Telegram message it replies to, the button's own
delivery, or the client's most recent open prompt. Every write is idempotent, so a replayed
update stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot import messages
from bot.clock import Clock
from bot.db.models import (
    OPEN_STATUSES,
    CheckIn,
    Client,
    ClientStatus,
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


@dataclass(frozen=True)
class Answered:
    """An answer in words stored by `store_words`: the thanks to say, in the client's language."""

    thanks: str
    language: str | None


# The common case of an answer, read in one statement: the client writing, whether this message
# is stored already, and the prompt it answers (the message it replies to, or the latest open
# one) with whether that prompt has words already. Plain SQLAlchemy Core on the tables: the
# ORM's work around the few statements of a reply cost more than the database's.
_clients, _deliveries, _replies = Client.__table__, Delivery.__table__, Reply.__table__
# Each IN list as equalities: a list is expanded into the statement at every execution.
_has_words = exists().where(_replies.c.delivery_id == _deliveries.c.id,
                            or_(_replies.c.kind == ReplyKind.TEXT,
                                _replies.c.kind == ReplyKind.VOICE))
_stored_before = select(_replies.c.id).where(
    _replies.c.client_id == _clients.c.id,
    _replies.c.telegram_message_id == bindparam("message_id")).scalar_subquery()
_candidates = _deliveries.alias("candidates")
_replied_to = select(_candidates.c.id).where(
    _candidates.c.client_id == _clients.c.id,
    or_(_candidates.c.telegram_message_id == bindparam("reply_to"),
        _candidates.c.reminder_message_id == bindparam("reply_to"))
).correlate(_clients).limit(1).scalar_subquery()
_latest_open = select(_candidates.c.id).where(
    _candidates.c.client_id == _clients.c.id,
    or_(*(_candidates.c.status == status for status in OPEN_STATUSES)),
    _candidates.c.closed_at.is_(None), _candidates.c.expires_at > bindparam("now")
).correlate(_clients).order_by(_candidates.c.sent_at.desc(), _candidates.c.id.desc()
                               ).limit(1).scalar_subquery()
_ANSWER_READ = select(
    _clients.c.id, _clients.c.status, _clients.c.awaiting, _clients.c.language_code,
    _stored_before.label("stored_before"), _deliveries.c.id.label("delivery_id"),
    _deliveries.c.prompt, _deliveries.c.status.label("delivery_status"),
    _deliveries.c.answered_at, _deliveries.c.reminder_at, _deliveries.c.pair_group_id,
    _has_words.label("has_words"),
).select_from(_clients.outerjoin(
    _deliveries, _deliveries.c.id == func.coalesce(_replied_to, _latest_open))
).where(_clients.c.telegram_user_id == bindparam("user"))
_STORE_REPLY = insert(_replies)
_ANSWERED = update(_deliveries).where(_deliveries.c.id == bindparam("delivery")).values(
    status=bindparam("new_status"), answered_at=func.coalesce(_deliveries.c.answered_at,
                                                              bindparam("now")),
    reminder_at=None)
# Prompts whose answers do more than a thanks: record_message and the handlers' full path.
_NOT_PLAIN = (ResponseType.MULTI_STEP.value, ResponseType.QUESTIONNAIRE.value)


async def store_words(connection: AsyncConnection, now: datetime, *, telegram_user_id: int,
                      message_id: int, text: str, reply_to_message_id: int | None) -> Answered | None:
    """Words from a client, stored with the prompt they answer, in the common case: a client we
    may keep data for and who is not typing a setting, a message not stored before, and a prompt
    that is neither multi-step, a questionnaire nor paired (or no open prompt at all). None,
    with nothing written, for anything else: `record_message` and its handler deal with it.

    What is stored, and the thanks, are record_message's for the same message."""
    row = (await connection.execute(_ANSWER_READ, {
        "user": telegram_user_id, "message_id": message_id, "reply_to": reply_to_message_id,
        "now": now})).first()
    if row is None or row.status in (ClientStatus.STOPPED, ClientStatus.UNREACHABLE) \
            or row.awaiting or row.stored_before is not None:
        return None
    if row.delivery_id is not None and (row.pair_group_id is not None
                                        or row.prompt.get("response") in _NOT_PLAIN):
        return None
    await connection.execute(_STORE_REPLY, {
        "client_id": row.id, "delivery_id": row.delivery_id, "question": 0,
        "kind": ReplyKind.TEXT, "text": text, "telegram_message_id": message_id,
        "created_at": now})
    if row.delivery_id is None:
        return Answered(messages.UNPROMPTED_MESSAGE, row.language_code)
    status = DeliveryStatus.ANSWERED if row.delivery_status is DeliveryStatus.SENT \
        else row.delivery_status
    if status is not row.delivery_status or row.answered_at is None \
            or row.reminder_at is not None:
        await connection.execute(_ANSWERED, {"delivery": row.delivery_id, "new_status": status,
                                             "now": now})
    more = row.answered_at is not None and row.has_words
    return Answered(messages.THANKS_MORE_WORDS if more else messages.THANKS_WORDS,
                    row.language_code)


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
