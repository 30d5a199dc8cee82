"""Couples: two clients of one therapist, paired prompts, and what each partner sees of the other.

Outbound: a couple's enrolment becomes one pair group per step occurrence and one delivery per
partner (the planner does that, in each partner's own zone). Inbound: each answer stays private
until both partners have answered and each author's share choice is settled; then each partner is
told what the other chose to share, unless crisis language holds everything back for the
therapist. Whatever one partner is told because of the other goes through the outbox as a notice,
so quiet hours, pauses, /stop and Telegram's limits apply to it as to any prompt. The reveal
state lives in the database (pair groups, deliveries), so a restart loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import messages
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import (
    Alert,
    CheckIn,
    Client,
    ClientStatus,
    Consent,
    Couple,
    CoupleEnd,
    CouplePartner,
    Delivery,
    DeliveryStatus,
    Enrolment,
    PairGroup,
    PairKind,
    PairState,
    Reply,
    ReplyKind,
    ReplyRevision,
    Therapist,
)
from bot.library import Library
from bot.library.schema import Audience, ResponseType, parse_hhmm
from bot.messages import render
from bot.safety.screening import Screener
from bot.scheduling.planner import new_delivery
from bot.scheduling.timing import local_moment
from bot.services import safety
from bot.services.controls import quiet_release

log = logging.getLogger(__name__)

NOTICE_KEY = "couple.notice"  # the prompt key of a notice: a message with nothing to answer
NOTICE_LIFETIME = timedelta(days=7)
# An answer whose author has not pressed a share button is passed on (or kept) by their usual
# choice after this long, so a couple is not left waiting on a button.
SHARE_SETTLE = timedelta(minutes=15)
MAX_REVEAL_CHARS = 3000  # a reveal stays one Telegram message with room for its framing
OPEN_GROUP_STATES = (PairState.INVITED, PairState.OPEN)

# Callback data of the buttons the couple flows put on notices (handlers/couples.py reads them).
PAIRING_BUTTON = "cp"  # cp:<couple>:<s|k|n>  agree and usually share / agree and usually keep / not now
SHARE_BUTTON = "sh"  # sh:<delivery>:<1|0>


class CoupleError(Exception):
    """A pairing request that cannot be carried out; the message says why, in plain words."""


# Reading couples ------------------------------------------------------------------------------

async def open_couple(session: AsyncSession, client_id: int) -> Couple | None:
    """The couple (pending or active) this client is in, if any."""
    partner = await session.scalar(select(CouplePartner).where(
        CouplePartner.open_client_id == client_id))
    return await session.get(Couple, partner.couple_id) if partner else None


async def active_couple(session: AsyncSession, client_id: int) -> Couple | None:
    couple = await open_couple(session, client_id)
    return couple if couple is not None and is_active(couple) else None


def is_active(couple: Couple) -> bool:
    return couple.active_at is not None and couple.ended_at is None


@dataclass(frozen=True)
class Pair:
    """A couple seen from one partner: their own row and client, and the other's."""

    couple: Couple
    mine: CouplePartner
    theirs: CouplePartner
    me: Client
    other: Client
    therapist_name: str


async def pair_of(session: AsyncSession, couple: Couple, client_id: int) -> Pair | None:
    rows = {p.client_id: p for p in couple.partners}
    if client_id not in rows or len(rows) != 2:
        return None
    other_id = next(cid for cid in rows if cid != client_id)
    me, other = await session.get(Client, client_id), await session.get(Client, other_id)
    therapist = await session.get(Therapist, couple.therapist_id)
    assert me is not None and other is not None and therapist is not None
    return Pair(couple, rows[client_id], rows[other_id], me, other, therapist.display_name)


# Notices: what one partner is told because of the other, through the outbox -------------------

async def notice(session: AsyncSession, client: Client, text: str, *, key: str, clock: Clock,
                 buttons: list[list[tuple[str, str]]] | None = None,
                 reply_to: int | None = None) -> Delivery | None:
    """Queue a message for a client (their quiet hours apply); once per key, however often asked."""
    if await session.scalar(select(Delivery.id).where(Delivery.dedupe_key == key)):
        return None
    now = clock.now()
    prompt: dict[str, Any] = {"key": NOTICE_KEY, "kind": "reflection", "response": "text",
                              "text": text, "notice": True}
    if buttons:
        prompt["buttons"] = [[list(button) for button in row] for row in buttons]
    if reply_to is not None:
        prompt["reply_to"] = reply_to
    due = quiet_release(client, now)
    delivery = Delivery(client_id=client.id, dedupe_key=key, prompt_key=NOTICE_KEY, prompt=prompt,
                        scheduled_for=now, due_at=due, expires_at=due + NOTICE_LIFETIME)
    session.add(delivery)
    await session.flush()
    return delivery


def _key(couple: Couple, *parts: object) -> str:
    return ":".join((f"cp{couple.id}", *(str(part) for part in parts)))


async def _cancel_pending_notices(session: AsyncSession, couple: Couple, now: datetime) -> None:
    """Nothing queued for a couple goes out after it ends: no reveal, no invitation."""
    await session.execute(update(Delivery).where(
        Delivery.dedupe_key.startswith(f"cp{couple.id}:"),
        Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    ).values(status=DeliveryStatus.SKIPPED, closed_at=now, last_error="couple ended"))


# Linking, agreeing, ending ----------------------------------------------------------------------

async def _has_consent(session: AsyncSession, client: Client) -> bool:
    return client.status is ClientStatus.ACTIVE and await session.scalar(select(Consent.id).where(
        Consent.client_id == client.id, Consent.revoked_at.is_(None)).limit(1)) is not None


async def link(session: AsyncSession, *, first: int, second: int, clock: Clock, library: Library,
               therapist_id: int | None = None, program: str | None = None,
               anchor: datetime | None = None) -> Couple:
    """Link two clients as a couple and ask each, in their own chat, to agree.

    `therapist_id` is set when a therapist asks (on Telegram): both clients must be theirs.
    """
    if first == second:
        raise CoupleError("a couple is two different clients")
    clients = []
    for client_id in (first, second):
        client = await session.get(Client, client_id)
        if client is None or (therapist_id is not None and client.therapist_id != therapist_id):
            raise CoupleError(f"there is no client {client_id}"
                              + (" among your clients" if therapist_id is not None else ""))
        clients.append(client)
    a, b = clients
    if a.therapist_id != b.therapist_id:
        raise CoupleError(f"clients {a.id} and {b.id} have different therapists; a couple is two "
                          "clients of the same therapist")
    for client in clients:
        if not await _has_consent(session, client):
            raise CoupleError(f"client {client.id} has not consented (or has stopped); both "
                              "partners need to have joined first")
        existing = await open_couple(session, client.id)
        if existing is not None:
            raise CoupleError(f"client {client.id} is already in couple {existing.id}")
    if program is not None:
        chosen = library.programs.get(program)
        if chosen is None or chosen.audience is not Audience.COUPLE:
            raise CoupleError(f"there is no couple program {program!r} (see `interlude prompts list`)")
        if chosen.anchor and anchor is None:
            raise CoupleError(f"program {program!r} needs --anchor (the couple's medicine session)")
    if anchor is not None and anchor.tzinfo is None:
        raise CoupleError("the anchor needs a time zone offset, like 2026-12-01T10:00+01:00")

    now = clock.now()
    couple = Couple(therapist_id=a.therapist_id, created_at=now)
    session.add(couple)
    await session.flush()
    for position, client in enumerate(clients):
        session.add(CouplePartner(couple_id=couple.id, client_id=client.id,
                                  open_client_id=client.id, position=position))
    if program is not None:
        # Its span is set when the second partner agrees, as a client's starts at their consent.
        session.add(Enrolment(couple_id=couple.id, program_key=program, anchor_at=anchor,
                              starts_at=now, created_at=now))
    await session.flush()
    await session.refresh(couple, ["partners"])
    therapist = await session.get(Therapist, couple.therapist_id)
    assert therapist is not None
    for client, other in ((a, b), (b, a)):
        language = client.language_code
        await notice(session, client, render(
            messages.PAIRING_QUESTION, language, therapist=therapist.display_name,
            partner=other.display_name), key=_key(couple, "pairing", client.id), clock=clock,
            buttons=[[(render(messages.PAIRING_YES_SHARE, language), f"{PAIRING_BUTTON}:{couple.id}:s")],
                     [(render(messages.PAIRING_YES_KEEP, language), f"{PAIRING_BUTTON}:{couple.id}:k")],
                     [(render(messages.PAIRING_NOT_NOW, language), f"{PAIRING_BUTTON}:{couple.id}:n")]])
    log.info("couple %d linked, waiting for both partners", couple.id)
    return couple


class PairingAnswer(StrEnum):
    FOREIGN = "foreign"  # not this person's couple
    CLOSED = "closed"  # the couple has ended, or this partner already answered
    WAITING = "waiting"  # agreed; the other partner has not yet
    STARTED = "started"  # agreed, and the other already had: the couple is active
    DECLINED = "declined"


@dataclass(frozen=True)
class PairingOutcome:
    answer: PairingAnswer
    partner_name: str = ""
    couple_id: int | None = None
    client_ids: tuple[int, ...] = ()


async def answer_pairing(session: AsyncSession, client: Client, couple_id: int, choice: str,
                         clock: Clock, library: Library) -> PairingOutcome:
    """A partner's answer to the pairing question: agree with a usual share choice, or not now."""
    couple = await session.get(Couple, couple_id)
    pair = await pair_of(session, couple, client.id) if couple is not None else None
    if couple is None or pair is None or choice not in ("s", "k", "n"):
        return PairingOutcome(PairingAnswer.FOREIGN)
    name = pair.other.display_name
    if couple.ended_at is not None or pair.mine.agreed_at is not None \
            or pair.mine.declined_at is not None:
        return PairingOutcome(PairingAnswer.CLOSED, name)
    now = clock.now()
    if choice == "n":
        pair.mine.declined_at = now
        await end_couple(session, couple, by=client, reason=CoupleEnd.DECLINED, clock=clock,
                         tell_other=False)
        if pair.theirs.agreed_at is not None:
            await notice(session, pair.other, render(
                messages.PAIRING_NOT_STARTING, pair.other.language_code,
                partner=client.display_name), key=_key(couple, "not-starting"), clock=clock)
        return PairingOutcome(PairingAnswer.DECLINED, name)
    pair.mine.agreed_at, pair.mine.shares_by_default = now, choice == "s"
    if pair.theirs.agreed_at is None:
        return PairingOutcome(PairingAnswer.WAITING, name)
    couple.active_at = now
    for enrolment in await session.scalars(select(Enrolment).where(
            Enrolment.couple_id == couple.id, Enrolment.ended_at.is_(None),
            Enrolment.planned_through.is_(None))):
        program = library.programs.get(enrolment.program_key)
        enrolment.starts_at = now
        enrolment.ends_at = now + timedelta(days=program.duration_days) \
            if program and program.duration_days else None
    await notice(session, pair.other, render(messages.PAIRING_BOTH_IN, pair.other.language_code,
                                             partner=client.display_name),
                 key=_key(couple, "both-in"), clock=clock)
    log.info("couple %d is active", couple.id)
    return PairingOutcome(PairingAnswer.STARTED, name, couple.id, (client.id, pair.other.id))


async def enrol(session: AsyncSession, couple_id: int, program_key: str, library: Library,
                clock: Clock, anchor: datetime | None = None) -> Enrolment:
    """A couple program for an active couple, starting now."""
    couple = await session.get(Couple, couple_id)
    if couple is None or couple.ended_at is not None:
        raise CoupleError(f"there is no open couple {couple_id}")
    program = library.programs.get(program_key)
    if program is None or program.audience is not Audience.COUPLE:
        raise CoupleError(f"there is no couple program {program_key!r}")
    if program.anchor and anchor is None:
        raise CoupleError(f"program {program_key!r} needs --anchor (the couple's medicine session)")
    now = clock.now()
    enrolment = Enrolment(couple_id=couple.id, program_key=program_key, anchor_at=anchor,
                          starts_at=now, created_at=now,
                          ends_at=now + timedelta(days=program.duration_days)
                          if program.duration_days else None)
    session.add(enrolment)
    await session.flush()
    return enrolment


async def send_now(session: AsyncSession, couple_id: int, prompt_key: str, library: Library,
                   clock: Clock, settings: Settings) -> PairGroup:
    """A therapist's one-off paired prompt: to both partners now (each one's quiet hours apply)."""
    couple = await session.get(Couple, couple_id)
    if couple is None or not is_active(couple):
        raise CoupleError(f"there is no active couple {couple_id}")
    prompt = library.prompts.get(prompt_key)
    if prompt is None:
        raise CoupleError(f"there is no prompt {prompt_key!r} (see `interlude prompts list`)")
    if prompt.response is ResponseType.CHECKIN:
        raise CoupleError("a check-in cannot be paired; choose a prompt that takes words or buttons")
    now = clock.now()
    group = PairGroup(couple_id=couple.id, kind=PairKind.PROMPT, state=PairState.OPEN,
                      expires_at=now, created_at=now)
    session.add(group)
    await session.flush()
    for partner in couple.partners:
        client = await session.get(Client, partner.client_id)
        assert client is not None
        delivery = new_delivery(client, prompt, scheduled_for=now, settings=settings)
        delivery.pair_group_id = group.id
        delivery.prompt = {**delivery.prompt, "pair": PairKind.PROMPT.value}
        session.add(delivery)
    await session.flush()
    await share_expiry(session, group)
    return group


async def share_expiry(session: AsyncSession, group: PairGroup) -> None:
    """One expiry for the pair: the later of the two partners' own."""
    members = await group_deliveries(session, group.id)
    if members:
        group.expires_at = max(d.expires_at for d in members)
        for delivery in members:
            delivery.expires_at = group.expires_at


async def end_couple(session: AsyncSession, couple: Couple, *, by: Client | None,
                     reason: CoupleEnd, clock: Clock, tell_other: bool = True) -> None:
    """End paired prompts for both partners: nothing open is revealed, nothing queued is sent."""
    if couple.ended_at is not None:
        return
    now = clock.now()
    couple.ended_at, couple.end_reason = now, reason
    couple.ended_by_client_id = by.id if by is not None else None
    for partner in couple.partners:
        partner.open_client_id = None
    await session.execute(update(Enrolment).where(
        Enrolment.couple_id == couple.id, Enrolment.ended_at.is_(None)).values(ended_at=now))
    groups = list(await session.scalars(select(PairGroup.id).where(
        PairGroup.couple_id == couple.id, PairGroup.state.in_(OPEN_GROUP_STATES))))
    if groups:
        await session.execute(update(PairGroup).where(PairGroup.id.in_(groups))
                              .values(state=PairState.CANCELLED, closed_at=now))
        await session.execute(update(Delivery).where(
            Delivery.pair_group_id.in_(groups),
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
        ).values(status=DeliveryStatus.SKIPPED, closed_at=now, last_error="couple ended"))
        await session.execute(update(Delivery).where(
            Delivery.pair_group_id.in_(groups), Delivery.closed_at.is_(None),
        ).values(closed_at=now, reminder_at=None))
    await _cancel_pending_notices(session, couple, now)
    log.info("couple %d ended: %s", couple.id, reason.value)
    if not tell_other or by is None:
        return
    pair = await pair_of(session, couple, by.id)
    assert pair is not None
    if pair.other.status is ClientStatus.ACTIVE:
        await notice(session, pair.other, render(
            messages.COUPLE_ENDED, pair.other.language_code, partner=by.display_name,
            therapist=pair.therapist_name), key=_key(couple, "ended"), clock=clock)


async def uncouple(session: AsyncSession, client: Client, clock: Clock) -> Pair | None:
    """/uncouple: the couple ends for both; the other partner is told kindly, without reasons."""
    couple = await open_couple(session, client.id)
    if couple is None:
        return None
    pair = await pair_of(session, couple, client.id)
    await end_couple(session, couple, by=client, reason=CoupleEnd.UNCOUPLED, clock=clock)
    return pair


async def client_stopped(session: AsyncSession, client: Client, clock: Clock) -> None:
    """/stop by a partner ends paired prompts for both, and reveals nothing pending."""
    couple = await open_couple(session, client.id)
    if couple is not None:
        await end_couple(session, couple, by=client, reason=CoupleEnd.STOPPED, clock=clock)


# Answers, share choices and the reveal ---------------------------------------------------------

def finished(delivery: Delivery) -> bool:
    """Whether a partner has answered their side: every step of an exercise, or the prompt."""
    if delivery.answered_at is None:
        return False
    if delivery.prompt.get("response") == ResponseType.MULTI_STEP:
        return delivery.progress >= len(delivery.prompt.get("steps") or [])
    return True


async def group_deliveries(session: AsyncSession, group_id: int) -> list[Delivery]:
    return list(await session.scalars(select(Delivery).where(
        Delivery.pair_group_id == group_id).order_by(Delivery.id)))


async def _pair_in(session: AsyncSession, group: PairGroup, client_id: int) -> Pair:
    """The couple behind a pair group, seen from one of its partners."""
    couple = await session.get(Couple, group.couple_id)
    assert couple is not None
    pair = await pair_of(session, couple, client_id)
    assert pair is not None
    return pair


async def _group_and_pair(session: AsyncSession, delivery: Delivery,
                          client_id: int) -> tuple[PairGroup, Pair]:
    """A paired delivery's pair group, and its couple seen from the delivery's own client."""
    assert delivery.pair_group_id is not None
    group = await session.get(PairGroup, delivery.pair_group_id)
    assert group is not None
    return group, await _pair_in(session, group, client_id)


@dataclass(frozen=True)
class ShareQuestion:
    """What the handler asks after a paired answer: share it with the partner, or keep it."""

    delivery_id: int
    partner_name: str
    usual_share: bool


@dataclass(frozen=True)
class AfterAnswer:
    share: ShareQuestion | None = None
    alerts: tuple[safety.RaisedAlert, ...] = ()  # for the therapist's Telegram


async def after_answer(session: AsyncSession, client: Client, delivery: Delivery | None,
                       clock: Clock, screener: Screener, *, just_answered: bool) -> AfterAnswer:
    """After an answer was stored: the share question to ask, if any; and settle the pair."""
    if delivery is None or delivery.pair_group_id is None:
        return AfterAnswer()
    group = await session.get(PairGroup, delivery.pair_group_id)
    if group is None or group.state not in OPEN_GROUP_STATES:
        return AfterAnswer()  # closed, declined or cancelled: kept for the therapist only
    alerts = tuple(await settle(session, group, clock, screener))
    if not (just_answered and finished(delivery) and delivery.shared is None
            and group.state in OPEN_GROUP_STATES):
        return AfterAnswer(alerts=alerts)
    pair = await _pair_in(session, group, client.id)
    return AfterAnswer(ShareQuestion(delivery.id, pair.other.display_name,
                                     bool(pair.mine.shares_by_default)), alerts)


class ShareAnswer(StrEnum):
    FOREIGN = "foreign"
    SETTLED = "settled"  # the pair was already revealed or closed: nothing changes
    CHOSEN = "chosen"


@dataclass(frozen=True)
class ShareOutcome:
    answer: ShareAnswer
    partner_name: str = ""
    therapist_name: str = ""
    alerts: tuple[safety.RaisedAlert, ...] = ()


async def choose_share(session: AsyncSession, client: Client, delivery_id: int, share: bool,
                       clock: Clock, screener: Screener) -> ShareOutcome:
    """The author's share button for one paired answer (it may be changed until the reveal)."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id or delivery.pair_group_id is None:
        return ShareOutcome(ShareAnswer.FOREIGN)
    group, pair = await _group_and_pair(session, delivery, client.id)
    names = {"partner_name": pair.other.display_name, "therapist_name": pair.therapist_name}
    if group.state not in OPEN_GROUP_STATES or not finished(delivery):
        return ShareOutcome(ShareAnswer.SETTLED, **names)
    delivery.shared, delivery.share_chosen_at = share, clock.now()
    alerts = tuple(await settle(session, group, clock, screener))
    return ShareOutcome(ShareAnswer.CHOSEN, alerts=alerts, **names)


async def _replies(session: AsyncSession, delivery: Delivery) -> list[Reply]:
    return list(await session.scalars(select(Reply).where(
        Reply.delivery_id == delivery.id).order_by(Reply.question, Reply.created_at, Reply.id)))


def _choice_settled(delivery: Delivery, replies: list[Reply], now: datetime,
                    expires_at: datetime) -> bool:
    if delivery.shared is not None or now >= expires_at:
        return True
    last = max((r.created_at for r in replies), default=delivery.answered_at)
    return last is not None and now >= last + SHARE_SETTLE


async def settle(session: AsyncSession, group: PairGroup, clock: Clock,
                 screener: Screener) -> list[safety.RaisedAlert]:
    """Reveal a pair once both have answered and both share choices are settled.

    Each partner gets the other's answer only if its author chose to share it. Crisis language in
    either answer holds both back: nothing is passed on, and the therapist is alerted. Returns
    the alerts raised here, for the caller to send to the therapist's Telegram.
    """
    if group.state is not PairState.OPEN:
        return []
    couple = await session.get(Couple, group.couple_id)
    assert couple is not None
    deliveries = await group_deliveries(session, group.id)
    if not is_active(couple) or len(deliveries) != 2 or not all(finished(d) for d in deliveries):
        return []
    now = clock.now()
    answers = {d.id: await _replies(session, d) for d in deliveries}
    if not all(_choice_settled(d, answers[d.id], now, group.expires_at) for d in deliveries):
        return []

    pairs = {d.id: await pair_of(session, couple, d.client_id) for d in deliveries}
    for delivery in deliveries:
        pair = pairs[delivery.id]
        assert pair is not None
        if delivery.shared is None:
            delivery.shared = bool(pair.mine.shares_by_default)
    group.closed_at = now

    alerts = await _screen(session, deliveries, answers, clock, screener)
    if alerts is not None:
        group.state = PairState.HELD
        for delivery in deliveries:
            pair = pairs[delivery.id]
            assert pair is not None
            await notice(session, pair.me, render(
                messages.REVEAL_HELD, pair.me.language_code, therapist=pair.therapist_name),
                key=_key(couple, "pg", group.id, "held", pair.me.id), clock=clock,
                reply_to=delivery.telegram_message_id)
        log.warning("pair group %d held back for the therapist: crisis language", group.id)
        return alerts

    group.state = PairState.REVEALED
    for delivery, partners_delivery in ((deliveries[0], deliveries[1]),
                                        (deliveries[1], deliveries[0])):
        # `delivery`'s author receives what `partners_delivery`'s author chose to share.
        pair = pairs[delivery.id]
        assert pair is not None
        language, names = pair.me.language_code, {"partner": pair.other.display_name,
                                                  "therapist": pair.therapist_name}
        if partners_delivery.shared:
            partners_delivery.revealed_at = now
            answer = _answer_text(partners_delivery, answers[partners_delivery.id], language,
                                  pair.therapist_name)
            head = render(messages.REVEAL_SHARED, language, answer=answer, **names)
        else:
            head = render(messages.REVEAL_KEPT, language, **names)
        own = messages.REVEAL_YOURS_SHARED if delivery.shared else messages.REVEAL_YOURS_KEPT
        text = f"{head}\n\n{render(own, language, **names)}"
        talk_button = None
        if group.kind is PairKind.EXERCISE:  # both finished: either may suggest a repair talk
            text += "\n\n" + render(messages.REPAIR_TALK_OFFER, language, **names)
            talk_button = [[(render(messages.REPAIR_TALK_SUGGEST, language),
                             f"{TALK_BUTTON}:{group.id}:ask")]]
        await notice(session, pair.me, text,
                     key=_key(couple, "pg", group.id, "reveal", pair.me.id), clock=clock,
                     reply_to=delivery.telegram_message_id, buttons=talk_button)
    log.info("pair group %d revealed", group.id)
    return []


async def _screen(session: AsyncSession, deliveries: list[Delivery],
                  answers: dict[int, list[Reply]], clock: Clock,
                  screener: Screener) -> list[safety.RaisedAlert] | None:
    """None when no answer holds crisis language; else the alerts raised (maybe none, if raised)."""
    found = False
    alerts: list[safety.RaisedAlert] = []
    for delivery in deliveries:
        for reply in answers[delivery.id]:
            screening = screener.screen(reply.text) if reply.text else None
            if screening is None or not screening.crisis or screening.category is None:
                continue
            found = True
            # The words were usually alerted on as they arrived; an edit may have brought them.
            since = delivery.sent_at or delivery.scheduled_for
            already = await session.scalar(select(Alert.id).where(
                Alert.client_id == delivery.client_id, Alert.category == screening.category,
                Alert.created_at >= since).limit(1))
            if already is None:
                client = await session.get(Client, delivery.client_id)
                assert client is not None
                alerts.append(await safety.raise_alert(session, client, screening.category,
                                                       reply.id, clock))
    return alerts if found else None


def _answer_text(delivery: Delivery, replies: list[Reply], language: str | None,
                 therapist: str) -> str:
    """A partner's answer as the other reads it: words, choices, and each step of an exercise."""
    steps: list[dict[str, Any]] = delivery.prompt.get("steps") or []

    def shown(reply: Reply) -> str:
        if reply.kind is ReplyKind.VOICE:
            return render(messages.REVEAL_VOICE_NOTE, language, therapist=therapist)
        if reply.kind is ReplyKind.SCALE:
            return f"{reply.value}/10" if reply.value is not None else ""
        return reply.text or reply.value or ""

    if steps:
        parts = []
        for index, step in enumerate(steps):
            said = [shown(r) for r in replies if r.question == index]
            if said:
                parts.append(f"{index + 1}. {step['text']}\n" + "\n".join(said))
        text = "\n\n".join(parts)
    else:
        text = "\n".join(shown(r) for r in replies)
    if len(text) > MAX_REVEAL_CHARS:
        text = text[:MAX_REVEAL_CHARS].rstrip() + "…\n" + render(
            messages.REVEAL_SHORTENED, language, therapist=therapist)
    return text


async def edited_after_reveal(session: AsyncSession, client: Client,
                              message_id: int) -> ShareOutcome | None:
    """Whether this edited message belongs to an answer already passed on to the partner."""
    reply = await session.scalar(select(Reply).where(
        Reply.client_id == client.id, Reply.telegram_message_id == message_id))
    if reply is None or reply.delivery_id is None:
        return None
    delivery = await session.get(Delivery, reply.delivery_id)
    if delivery is None or delivery.revealed_at is None or delivery.pair_group_id is None:
        return None
    _, pair = await _group_and_pair(session, delivery, client.id)
    return ShareOutcome(ShareAnswer.CHOSEN, pair.other.display_name, pair.therapist_name)


# Housekeeping: settle choices that waited long enough, close expired pairs ----------------------

async def housekeeping(session: AsyncSession, clock: Clock,
                       screener: Screener) -> list[safety.RaisedAlert]:
    """Settle pairs whose share choices have waited long enough, and close expired ones."""
    now = clock.now()
    alerts: list[safety.RaisedAlert] = []
    groups = list(await session.scalars(select(PairGroup).where(
        PairGroup.state.in_(OPEN_GROUP_STATES)).order_by(PairGroup.id)))
    for group in groups:
        deliveries = await group_deliveries(session, group.id)
        # One expiry for both: the later of the two (the dispatcher may have moved one).
        latest = max([group.expires_at, *(d.expires_at for d in deliveries)])
        group.expires_at = latest
        for delivery in deliveries:
            delivery.expires_at = latest
        alerts += await settle(session, group, clock, screener)
        if group.state in OPEN_GROUP_STATES and group.expires_at <= now:
            await _expire(session, group, deliveries, clock)
    return alerts


async def _expire(session: AsyncSession, group: PairGroup, deliveries: list[Delivery],
                  clock: Clock) -> None:
    """Closed before both answered: nothing is passed on; whoever answered is told gently."""
    couple = await session.get(Couple, group.couple_id)
    assert couple is not None
    group.state, group.closed_at = PairState.EXPIRED, clock.now()
    answered = [d for d in deliveries if d.answered_at is not None]
    for delivery in answered:
        pair = await pair_of(session, couple, delivery.client_id)
        assert pair is not None
        if pair.me.status is ClientStatus.ACTIVE and is_active(couple):
            await notice(session, pair.me, render(
                messages.PAIR_CLOSED_ONE_ANSWER, pair.me.language_code,
                therapist=pair.therapist_name),
                key=_key(couple, "pg", group.id, "closed", pair.me.id), clock=clock,
                reply_to=delivery.telegram_message_id)
    log.info("pair group %d closed with %d of 2 answers", group.id, len(answered))


# The therapist's view ---------------------------------------------------------------------------

async def couples(session: AsyncSession, therapist_id: int | None = None) -> list[dict[str, Any]]:
    """Every couple with its partners and state, newest first; a therapist sees only their own."""
    query = select(Couple).order_by(Couple.id.desc())
    if therapist_id is not None:
        query = query.where(Couple.therapist_id == therapist_id)
    rows = []
    for couple in await session.scalars(query):
        partners = []
        for partner in couple.partners:
            client = await session.get(Client, partner.client_id)
            assert client is not None
            partners.append({
                "client_id": client.id, "name": client.display_name,
                "timezone": client.timezone, "agreed_at": partner.agreed_at,
                "declined_at": partner.declined_at,
                "shares_by_default": partner.shares_by_default})
        programs = [e.program_key for e in await session.scalars(select(Enrolment).where(
            Enrolment.couple_id == couple.id, Enrolment.ended_at.is_(None)))]
        rows.append({"id": couple.id, "therapist_id": couple.therapist_id,
                     "state": couple_state(couple), "created_at": couple.created_at,
                     "active_at": couple.active_at, "ended_at": couple.ended_at,
                     "end_reason": couple.end_reason.value if couple.end_reason else None,
                     "ended_by_client_id": couple.ended_by_client_id,
                     "partners": partners, "programs": programs})
    return rows


def couple_state(couple: Couple) -> str:
    if couple.ended_at is not None:
        return "ended"
    return "active" if couple.active_at is not None else "waiting for agreement"


async def side_by_side(session: AsyncSession, couple_id: int,
                       therapist_id: int | None = None) -> dict[str, Any]:
    """Both partners side by side: every paired prompt with both answers, what was shared and
    what was kept, the timing, and both partners' check-ins for one chart (for the dashboard)."""
    couple = await session.get(Couple, couple_id)
    if couple is None or (therapist_id is not None and couple.therapist_id != therapist_id):
        raise CoupleError(f"there is no couple {couple_id}")
    partner_ids = [p.client_id for p in couple.partners]
    groups = []
    for group in await session.scalars(select(PairGroup).where(
            PairGroup.couple_id == couple.id).order_by(PairGroup.created_at, PairGroup.id)):
        sides = []
        for delivery in await group_deliveries(session, group.id):
            replies = await _replies(session, delivery)
            revisions: dict[int, list[dict[str, Any]]] = {r.id: [] for r in replies}
            for revision in await session.scalars(select(ReplyRevision).where(
                    ReplyRevision.reply_id.in_(list(revisions))).order_by(ReplyRevision.id)):
                revisions[revision.reply_id].append(
                    {"text": revision.text, "replaced_at": revision.replaced_at})
            sides.append({
                "client_id": delivery.client_id, "delivery_id": delivery.id,
                "prompt_key": delivery.prompt_key, "prompt_text": delivery.prompt.get("text"),
                "status": delivery.status.value, "sent_at": delivery.sent_at,
                "answered_at": delivery.answered_at, "shared": delivery.shared,
                "share_chosen": delivery.share_chosen_at is not None,
                "revealed_at": delivery.revealed_at,
                "answers": [{
                    "id": r.id, "question": r.question, "kind": r.kind.value, "text": r.text,
                    "value": r.value, "voice_seconds": r.voice_duration,
                    "at": r.created_at, "edited_at": r.edited_at,
                    "edited_after_reveal": bool(delivery.revealed_at and r.edited_at
                                                and r.edited_at > delivery.revealed_at),
                    "earlier_versions": revisions[r.id]} for r in replies]})
        groups.append({"pair_group_id": group.id, "kind": group.kind.value,
                       "state": group.state.value, "created_at": group.created_at,
                       "expires_at": group.expires_at, "closed_at": group.closed_at,
                       "started_by_client_id": group.started_by_client_id,
                       "talk_at": group.talk_at, "talk_accepted_at": group.talk_accepted_at,
                       "partners": sides})
    checkins = {client_id: [{"at": c.recorded_at, "state": c.state.value if c.state else None,
                             "intensity": c.intensity}
                            for c in await session.scalars(select(CheckIn).where(
                                CheckIn.client_id == client_id).order_by(CheckIn.recorded_at))]
                for client_id in partner_ids}
    summary = next(c for c in await couples(session, couple.therapist_id) if c["id"] == couple.id)
    return {**summary, "pair_groups": groups, "checkins": checkins}



# The repair exercise: /repair, an invitation the partner may decline, a talk both agree to ---------

REPAIR_PROMPT = "repair.kind-repair"  # the library's guided repair, step by step
REPAIR_WINDOW = timedelta(hours=48)  # both partners' time to finish, from the start
TALK_MINUTES = 20
INVITE_BUTTON = "rj"  # rj:<group>:<j|d>  join / not this time
STEP_BUTTON = "rs"  # rs:<delivery>:<p|g>  pause here / a grounding moment
TALK_BUTTON = "rt"  # rt:<group>:ask | rt:<group>:<unix minute> | rt:<group>:ok | rt:<group>:no


class Repair(StrEnum):
    NOT_COUPLED = "not_coupled"
    STARTED = "started"  # a new exercise; the partner is invited
    RESUMED = "resumed"  # an exercise this partner had begun: the step where they paused
    JOINED = "joined"  # the invited partner joined
    DECLINED = "declined"  # the invited partner said not this time
    DONE = "done"  # this partner has finished their side already
    CLOSED = "closed"  # the invitation or exercise is no longer open
    FOREIGN = "foreign"


@dataclass(frozen=True)
class RepairOutcome:
    result: Repair
    delivery_id: int | None = None  # the exercise to show this partner
    prompt: dict[str, Any] | None = None
    step: int = 0
    partner_name: str = ""
    therapist_name: str = ""


def _exercise_delivery(client: Client, group: PairGroup, library: Library,
                       clock: Clock, settings: Settings) -> Delivery:
    """This partner's side of an exercise, claimed for sending from the handler right away.

    It is marked `sending` with a lease, so the dispatcher leaves it alone unless the process
    dies before it is sent; then it goes out once the lease expires.
    """
    now = clock.now()
    delivery = new_delivery(client, library.prompt(REPAIR_PROMPT), scheduled_for=now,
                            settings=settings)
    delivery.pair_group_id = group.id
    delivery.prompt = {**delivery.prompt, "pair": PairKind.EXERCISE.value}
    delivery.due_at, delivery.expires_at, delivery.reminder_at = now, group.expires_at, None
    delivery.status, delivery.claimed_at, delivery.attempts = DeliveryStatus.SENDING, now, 1
    return delivery


async def _open_exercise(session: AsyncSession, couple: Couple) -> PairGroup | None:
    return await session.scalar(select(PairGroup).where(
        PairGroup.couple_id == couple.id, PairGroup.kind == PairKind.EXERCISE,
        PairGroup.state.in_(OPEN_GROUP_STATES)).order_by(PairGroup.id.desc()).limit(1))


def _outcome(result: Repair, pair: Pair, delivery: Delivery | None = None) -> RepairOutcome:
    return RepairOutcome(result, delivery.id if delivery else None,
                         delivery.prompt if delivery else None,
                         min(delivery.progress, len(delivery.prompt.get("steps") or [1]) - 1)
                         if delivery else 0,
                         pair.other.display_name, pair.therapist_name)


async def start_repair(session: AsyncSession, client: Client, clock: Clock, library: Library,
                       settings: Settings) -> RepairOutcome:
    """/repair: start an exercise and invite the partner, or pick up the open one."""
    couple = await active_couple(session, client.id)
    pair = await pair_of(session, couple, client.id) if couple else None
    if couple is None or pair is None:
        return RepairOutcome(Repair.NOT_COUPLED)
    group = await _open_exercise(session, couple)
    if group is not None:
        mine = await session.scalar(select(Delivery).where(
            Delivery.pair_group_id == group.id, Delivery.client_id == client.id))
        if mine is None:  # invited and not yet answered: /repair means yes
            return await answer_invitation(session, client, group.id, True, clock, library,
                                           settings)
        return _outcome(Repair.DONE if finished(mine) else Repair.RESUMED, pair, mine)
    now = clock.now()
    group = PairGroup(couple_id=couple.id, kind=PairKind.EXERCISE, state=PairState.INVITED,
                      started_by_client_id=client.id, expires_at=now + REPAIR_WINDOW,
                      created_at=now)
    session.add(group)
    await session.flush()
    delivery = _exercise_delivery(client, group, library, clock, settings)
    session.add(delivery)
    language = pair.other.language_code
    await notice(session, pair.other, render(
        messages.REPAIR_INVITATION, language, partner=client.display_name,
        therapist=pair.therapist_name), key=_key(couple, "pg", group.id, "invite"), clock=clock,
        buttons=[[(render(messages.REPAIR_JOIN, language), f"{INVITE_BUTTON}:{group.id}:j"),
                  (render(messages.REPAIR_NOT_THIS_TIME, language),
                   f"{INVITE_BUTTON}:{group.id}:d")]])
    await session.flush()
    log.info("repair exercise %d started", group.id)
    return _outcome(Repair.STARTED, pair, delivery)


async def answer_invitation(session: AsyncSession, client: Client, group_id: int, join: bool,
                            clock: Clock, library: Library, settings: Settings) -> RepairOutcome:
    """The invited partner joins, or declines without penalty: then nothing is ever shown."""
    group = await session.get(PairGroup, group_id)
    couple = await session.get(Couple, group.couple_id) if group else None
    pair = await pair_of(session, couple, client.id) if couple else None
    if group is None or couple is None or pair is None or group.kind is not PairKind.EXERCISE \
            or group.started_by_client_id == client.id:
        return RepairOutcome(Repair.FOREIGN)
    if group.state is not PairState.INVITED or not is_active(couple):
        return _outcome(Repair.CLOSED, pair)
    starter = pair.other
    if not join:
        group.state, group.closed_at = PairState.DECLINED, clock.now()
        await notice(session, starter, render(
            messages.REPAIR_DECLINED_FOR_STARTER, starter.language_code,
            partner=client.display_name, therapist=pair.therapist_name),
            key=_key(couple, "pg", group.id, "declined"), clock=clock)
        log.info("repair exercise %d declined", group.id)
        return _outcome(Repair.DECLINED, pair)
    group.state = PairState.OPEN
    delivery = _exercise_delivery(client, group, library, clock, settings)
    session.add(delivery)
    await notice(session, starter, render(messages.REPAIR_JOINED, starter.language_code,
                                          partner=client.display_name),
                 key=_key(couple, "pg", group.id, "joined"), clock=clock)
    await session.flush()
    return _outcome(Repair.JOINED, pair, delivery)


async def mark_sent(session: AsyncSession, delivery_id: int, message_id: int,
                    clock: Clock) -> None:
    """An exercise step the handler sent itself: recorded as the dispatcher would."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is not None and delivery.status is DeliveryStatus.SENDING:
        delivery.status, delivery.claimed_at = DeliveryStatus.SENT, None
        delivery.telegram_message_id, delivery.sent_at = message_id, clock.now()


async def exercise_step(session: AsyncSession, client: Client,
                        delivery_id: int) -> RepairOutcome:
    """Where this partner is in a paired step-by-step prompt (for pause and grounding buttons)."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id or delivery.pair_group_id is None:
        return RepairOutcome(Repair.FOREIGN)
    _, pair = await _group_and_pair(session, delivery, client.id)
    if delivery.closed_at is not None or finished(delivery):
        return _outcome(Repair.CLOSED, pair, delivery)
    return _outcome(Repair.RESUMED, pair, delivery)


def talk_slots(client: Client, partner: Client, now: datetime) -> list[datetime]:
    """A few times for a 20-minute talk in the next days, outside both partners' quiet hours."""
    zone = ZoneInfo(client.timezone or "UTC")
    today = now.astimezone(zone).date()
    slots = []
    for days in range(3):
        for wall in ("12:30", "19:00"):
            moment = local_moment(today + timedelta(days=days), parse_hhmm(wall), zone)
            if moment > now + timedelta(hours=1) and all(
                    quiet_release(person, moment) == moment
                    and quiet_release(person, moment + timedelta(minutes=TALK_MINUTES))
                    == moment + timedelta(minutes=TALK_MINUTES) for person in (client, partner)):
                slots.append(moment)
    return slots[:4]


@dataclass(frozen=True)
class TalkOutcome:
    result: str  # "slots", "proposed", "accepted", "not_that_time", "closed", "foreign"
    slots: tuple[datetime, ...] = ()
    at: datetime | None = None
    partner_name: str = ""
    zone: str = "UTC"


async def talk(session: AsyncSession, client: Client, group_id: int, action: str,
               clock: Clock) -> TalkOutcome:
    """After a revealed exercise: offer times, propose one, or accept or turn down a proposal."""
    group = await session.get(PairGroup, group_id)
    couple = await session.get(Couple, group.couple_id) if group else None
    pair = await pair_of(session, couple, client.id) if couple else None
    if group is None or couple is None or pair is None or group.kind is not PairKind.EXERCISE:
        return TalkOutcome("foreign")
    zone = client.timezone or "UTC"
    name = pair.other.display_name
    now = clock.now()
    if group.state is not PairState.REVEALED or not is_active(couple) \
            or group.talk_accepted_at is not None:
        return TalkOutcome("closed", partner_name=name, zone=zone, at=group.talk_at)
    if action == "ask":
        return TalkOutcome("slots", tuple(talk_slots(client, pair.other, now)), partner_name=name,
                           zone=zone)
    if action in ("ok", "no"):
        if group.talk_at is None or group.talk_proposed_by_client_id == client.id:
            return TalkOutcome("closed", partner_name=name, zone=zone)
        at = group.talk_at
        other_zone = pair.other.timezone or "UTC"
        if action == "ok":
            group.talk_accepted_at = now
            await notice(session, pair.other, render(
                messages.REPAIR_TALK_SET, pair.other.language_code, partner=client.display_name,
                when=talk_time(at, other_zone)), key=_key(couple, "pg", group.id, "talk-set"),
                clock=clock)
            return TalkOutcome("accepted", at=at, partner_name=name, zone=zone)
        group.talk_at, group.talk_proposed_by_client_id = None, None
        language = pair.other.language_code
        await notice(session, pair.other, render(
            messages.REPAIR_TALK_OTHER_TIME, language, partner=client.display_name),
            key=_key(couple, "pg", group.id, "talk-no", int(now.timestamp())), clock=clock,
            buttons=[[(render(messages.REPAIR_TALK_SUGGEST, language),
                       f"{TALK_BUTTON}:{group.id}:ask")]])
        return TalkOutcome("not_that_time", partner_name=name, zone=zone)
    try:
        at = datetime.fromtimestamp(int(action) * 60, tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return TalkOutcome("foreign")
    if at <= now:
        return TalkOutcome("closed", partner_name=name, zone=zone)
    group.talk_at, group.talk_proposed_by_client_id = at, client.id
    language = pair.other.language_code
    await notice(session, pair.other, render(
        messages.REPAIR_TALK_PROPOSED, language, partner=client.display_name,
        when=talk_time(at, pair.other.timezone or "UTC")),
        key=_key(couple, "pg", group.id, "talk", int(now.timestamp())), clock=clock,
        buttons=[[(render(messages.REPAIR_TALK_OK, language), f"{TALK_BUTTON}:{group.id}:ok"),
                  (render(messages.REPAIR_TALK_NO, language), f"{TALK_BUTTON}:{group.id}:no")]])
    return TalkOutcome("proposed", at=at, partner_name=name, zone=zone)


def talk_time(moment: datetime, zone: str) -> str:
    """A repair talk's time as a partner reads it, in their own zone."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b, %H:%M")
