"""Therapists and invites, consent, and the first settings: the way into the program.

Nothing about a client is stored from Telegram before they consent: the invite token travels in
the consent button itself, and the Telegram account is bound only when they agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import messages
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import (
    Client,
    ClientStatus,
    Consent,
    Delivery,
    DeliveryStatus,
    Enrolment,
    Invite,
    Therapist,
)
from bot.library import Library
from bot.services import couples
from bot.services.tokens import THERAPIST_PREFIX, new_token, token_hash

# Bump when the product's consent wording changes. A practice's own parts (its name, crisis
# line, retention period) are folded into the version too, so changing any of them also asks
# every client again before their next prompt.
CONSENT_VERSION = "2026-11-22"


class OnboardingError(Exception):
    """A request an admin or therapist made that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Issued:
    id: int
    token: str


async def add_therapist(session: AsyncSession, name: str, clock: Clock,
                        settings: Settings) -> Issued:
    name = name.strip()
    if not name:
        raise OnboardingError("a therapist needs a name")
    therapist = Therapist(display_name=name, created_at=clock.now())
    session.add(therapist)
    await session.flush()
    return Issued(therapist.id, await new_therapist_link(session, therapist.id, clock, settings))


async def new_therapist_link(session: AsyncSession, therapist_id: int, clock: Clock,
                             settings: Settings) -> str:
    therapist = await session.get(Therapist, therapist_id)
    if therapist is None:
        raise OnboardingError(f"there is no therapist {therapist_id}")
    token = THERAPIST_PREFIX + new_token()
    therapist.link_token_hash = token_hash(token)
    therapist.link_expires_at = clock.now() + timedelta(hours=settings.therapist_link_ttl_hours)
    return token


async def bind_therapist(session: AsyncSession, token: str, telegram_user_id: int,
                         clock: Clock) -> Therapist | None:
    therapist = await session.scalar(
        select(Therapist).where(Therapist.link_token_hash == token_hash(token)))
    if therapist is None or therapist.link_expires_at is None \
            or therapist.link_expires_at <= clock.now():
        return None
    await session.execute(update(Therapist).where(Therapist.telegram_user_id == telegram_user_id)
                          .values(telegram_user_id=None))
    therapist.telegram_user_id = telegram_user_id
    therapist.link_token_hash = None
    therapist.link_expires_at = None
    return therapist


async def invite_client(session: AsyncSession, *, therapist_id: int, name: str, clock: Clock,
                        settings: Settings, library: Library, program: str | None = None,
                        anchor: datetime | None = None, timezone: str | None = None) -> Issued:
    from bot.services.timezones import is_zone

    if await session.get(Therapist, therapist_id) is None:
        raise OnboardingError(f"there is no therapist {therapist_id}")
    if not name.strip():
        raise OnboardingError("a client needs a name (initials are fine)")
    if timezone is not None and not is_zone(timezone):
        raise OnboardingError(f"{timezone!r} is not an IANA time zone, like Europe/Berlin")
    if anchor is not None and anchor.tzinfo is None:
        raise OnboardingError("the anchor needs a time zone offset, like 2026-12-01T10:00+01:00")
    if program is not None:
        chosen = library.programs.get(program)
        if chosen is None:
            raise OnboardingError(f"there is no program {program!r} (see `interlude prompts list`)")
        if chosen.anchor and chosen.anchor_required and anchor is None:
            raise OnboardingError(f"program {program!r} needs --anchor (the medicine session)")

    now = clock.now()
    client = Client(therapist_id=therapist_id, display_name=name.strip(),
                    suggested_timezone=timezone, quiet_start=settings.quiet_hours_start,
                    quiet_end=settings.quiet_hours_end, created_at=now)
    session.add(client)
    await session.flush()
    if program is not None:
        await enrol(session, client.id, program, library, clock, anchor=anchor)
    token = new_token()
    session.add(Invite(client_id=client.id, token_hash=token_hash(token),
                       expires_at=now + timedelta(hours=settings.invite_ttl_hours), created_at=now))
    return Issued(client.id, token)


async def enrol(session: AsyncSession, client_id: int, program_key: str, library: Library,
                clock: Clock, anchor: datetime | None = None) -> Enrolment:
    program = library.program(program_key)
    now = clock.now()
    enrolment = Enrolment(client_id=client_id, program_key=program_key, anchor_at=anchor,
                          starts_at=now, created_at=now)
    _set_span(enrolment, program.duration_days, now)
    session.add(enrolment)
    await session.flush()
    return enrolment


def _set_span(enrolment: Enrolment, duration_days: int | None, start: datetime) -> None:
    enrolment.starts_at = start
    enrolment.ends_at = start + timedelta(days=duration_days) if duration_days else None


class InviteState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class InviteCheck:
    state: InviteState
    client: Client | None = None
    therapist_name: str = ""


async def check_invite(session: AsyncSession, token: str, clock: Clock) -> InviteCheck:
    invite = await session.scalar(select(Invite).where(Invite.token_hash == token_hash(token)))
    if invite is None:
        return InviteCheck(InviteState.UNKNOWN)
    client = await session.get(Client, invite.client_id)
    assert client is not None
    therapist = await session.get(Therapist, client.therapist_id)
    assert therapist is not None
    if invite.used_at is not None:
        return InviteCheck(InviteState.USED, client, therapist.display_name)
    if invite.expires_at <= clock.now():
        return InviteCheck(InviteState.EXPIRED, client, therapist.display_name)
    return InviteCheck(InviteState.VALID, client, therapist.display_name)


def consent_text(language: str | None, therapist: str, settings: Settings) -> str:
    """What a client agrees to, in full, as the consent message shows it."""
    retention = (messages.render(messages.RETENTION_DAYS, language, days=settings.reply_retention_days)
                 if settings.reply_retention_days else messages.render(messages.RETENTION_NONE, language))
    return "\n\n".join((
        messages.render(messages.PRIVACY, language, therapist=therapist, retention=retention),
        messages.render(messages.NOT_AN_EMERGENCY_SERVICE, language, crisis_line=settings.crisis_line),
        messages.render(messages.CONSENT_QUESTION, language),
    ))


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def consent_text_hash(therapist: str, settings: Settings) -> str:
    """The hash of the consent text as the client saw it (in the catalog's source language)."""
    return _sha256(consent_text(None, therapist, settings), settings.practice_name)


def consent_version(settings: Settings) -> str:
    """The consent in force: the product's wording version and the practice's own parts."""
    return f"{CONSENT_VERSION}.{_sha256(consent_text(None, '', settings), settings.practice_name)[:8]}"


def consent_is_current(client: Client, settings: Settings) -> bool:
    return client.consent_version == consent_version(settings)


def renewal_text(language: str | None, therapist: str, settings: Settings) -> str:
    """The updated consent, introduced, for a client who agreed to an earlier version."""
    return "\n\n".join((
        messages.render(messages.CONSENT_RENEWAL, language, practice=settings.practice_name),
        consent_text(language, therapist, settings)))


def _record_consent(session: AsyncSession, client: Client, therapist: str, now: datetime,
                    settings: Settings) -> None:
    version = consent_version(settings)
    session.add(Consent(client_id=client.id, version=version, given_at=now,
                        text_sha256=consent_text_hash(therapist, settings)))
    client.consent_version = version


async def renew_consent(session: AsyncSession, client: Client, clock: Clock,
                        settings: Settings) -> None:
    """Agreement to the updated consent; prompts held for it go out now, unless long stale."""
    if client.status is not ClientStatus.ACTIVE or consent_is_current(client, settings):
        return
    therapist = await session.get(Therapist, client.therapist_id)
    assert therapist is not None
    now = clock.now()
    _record_consent(session, client, therapist.display_name, now, settings)
    held = (Delivery.client_id == client.id, Delivery.status == DeliveryStatus.PENDING,
            Delivery.scheduled_for <= now)
    await session.execute(update(Delivery).where(*held, Delivery.scheduled_for >= now - settings.grace)
                          .values(due_at=now))
    await session.execute(update(Delivery).where(*held, Delivery.scheduled_for < now - settings.grace)
                          .values(status=DeliveryStatus.SKIPPED, closed_at=now,
                                  last_error="held for consent, then too late"))


async def give_consent(session: AsyncSession, token: str, telegram_user_id: int,
                       language_code: str | None, clock: Clock,
                       settings: Settings, library: Library) -> InviteCheck:
    """Record consent and bind this Telegram account to the invited client."""
    check = await check_invite(session, token, clock)
    if check.state is InviteState.USED and check.client is not None \
            and check.client.telegram_user_id == telegram_user_id:
        # The same person pressing again, or a replay after a crash: already done, carry on.
        return InviteCheck(InviteState.VALID, check.client, check.therapist_name)
    if check.state is not InviteState.VALID:
        return check
    client = check.client
    assert client is not None
    existing = await client_by_telegram(session, telegram_user_id)
    if existing is not None and existing.id != client.id:
        if existing.status in (ClientStatus.ACTIVE, ClientStatus.UNREACHABLE):
            # Already with a therapist here: one Telegram account is one active client.
            return InviteCheck(InviteState.USED, existing, check.therapist_name)
        existing.telegram_user_id = None  # an old, stopped record keeps its history, unbound
        await session.flush()

    now = clock.now()
    client.telegram_user_id = telegram_user_id
    client.language_code = language_code
    client.status = ClientStatus.ACTIVE
    client.awaiting = None
    await session.execute(update(Invite).where(
        Invite.client_id == client.id, Invite.used_at.is_(None)).values(used_at=now))
    _record_consent(session, client, check.therapist_name, now, settings)
    # A program starts when the client says yes, not when the invite was written.
    enrolments = await session.scalars(select(Enrolment).where(
        Enrolment.client_id == client.id, Enrolment.planned_through.is_(None),
        Enrolment.ended_at.is_(None)))
    for enrolment in enrolments:
        program = library.programs.get(enrolment.program_key)
        _set_span(enrolment, program.duration_days if program else None, now)
    return InviteCheck(InviteState.VALID, client, check.therapist_name)


async def client_by_telegram(session: AsyncSession, telegram_user_id: int) -> Client | None:
    return await session.scalar(select(Client).where(Client.telegram_user_id == telegram_user_id))


async def revoke_consent(session: AsyncSession, client: Client, clock: Clock) -> None:
    """/stop: no prompt goes out after this commit, and open ones close."""
    now = clock.now()
    client.status = ClientStatus.STOPPED
    client.awaiting = None
    client.paused_until = None
    await session.execute(update(Consent).where(Consent.client_id == client.id,
                                                Consent.revoked_at.is_(None)).values(revoked_at=now))
    await session.execute(update(Delivery).where(
        Delivery.client_id == client.id,
        Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    ).values(status=DeliveryStatus.SKIPPED, closed_at=now, last_error="consent revoked"))
    await session.execute(update(Delivery).where(
        Delivery.client_id == client.id,
        Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.ANSWERED)),
        Delivery.closed_at.is_(None),
    ).values(closed_at=now, reminder_at=None))
    await session.execute(update(Enrolment).where(Enrolment.client_id == client.id,
                                                  Enrolment.ended_at.is_(None)).values(ended_at=now))
    # Paired prompts end for both partners, and nothing waiting is revealed.
    await couples.client_stopped(session, client, clock)
