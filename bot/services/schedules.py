"""A client's schedule as a therapist shapes it: programs, personal prompts, one-offs, pauses,
medicine sessions, and the prompts planned next (outbound path, before the planner).

Changes here write enrolments and deliveries only; the planner turns enrolments into deliveries
as it always does. Callers run `Planner.plan([client_id])` after committing, so a change shows
in the outbox at once instead of at the next planning round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import (
    Client,
    ClientStatus,
    Delivery,
    DeliveryStatus,
    Enrolment,
    Invite,
    MedicineSession,
)
from bot.library import Library
from bot.library.schema import Program, Prompt, PromptKind, ResponseType, Step, parse_hhmm
from bot.scheduling.planner import (
    CUSTOM_PROGRAM,
    Planner,
    first_start,
    new_delivery,
    program_of,
    prompt_snapshot,
)
from bot.scheduling.timing import QuietHours, occurrences
from bot.services import controls, onboarding
from bot.services.onboarding import OnboardingError
from bot.services.tokens import new_token, token_hash

PREVIEW_DAYS = 120  # how far ahead the preview looks for the next prompts
PERSONAL_KEY = "personal"


@dataclass(frozen=True)
class PlannedPrompt:
    """One prompt planned for a client, in their local time."""

    at: datetime  # UTC, after quiet hours moved it
    local: datetime  # the same moment on the client's clock
    prompt_key: str  # a key, or "one of N" for a pool not yet drawn
    text: str | None
    source: str  # the program's title, "personal prompt" or "sent by you"
    window: tuple[str, str] | None = None  # a window step: the minute is drawn at random

    def as_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "local": self.local.isoformat(),
                "prompt_key": self.prompt_key, "text": self.text, "source": self.source,
                "window": list(self.window) if self.window else None}


def client_zone(client: Client, settings: Settings) -> ZoneInfo:
    return ZoneInfo(client.timezone or client.suggested_timezone or settings.default_timezone)


async def active_enrolments(session: AsyncSession, client_id: int, now: datetime) -> list[Enrolment]:
    rows = await session.scalars(select(Enrolment).where(
        Enrolment.client_id == client_id, Enrolment.ended_at.is_(None)).order_by(Enrolment.id))
    return [e for e in rows if e.ends_at is None or e.ends_at > now or e.planned_through is None]


async def upcoming(session: AsyncSession, client: Client, library: Library, clock: Clock,
                   settings: Settings, *, extra: Enrolment | None = None,
                   limit: int = 10) -> list[PlannedPrompt]:
    """The next prompts this client will get, from their enrolments (and `extra`, an enrolment
    not saved yet, for the preview), with quiet hours applied, in their local time."""
    now = clock.now()
    zone = client_zone(client, settings)
    quiet = QuietHours.parse(client.quiet_start, client.quiet_end)
    enrolments = await active_enrolments(session, client.id, now)
    if extra is not None:
        enrolments.append(extra)
    found: list[PlannedPrompt] = []
    for enrolment in enrolments:
        program_and_prompts = program_of(enrolment, library)
        if program_and_prompts is None:
            continue
        program, prompts = program_and_prompts
        source = ("personal prompt" if program.key == CUSTOM_PROGRAM else program.title)
        # A program not started yet (the client has not agreed) starts when they do: from now.
        until = now + timedelta(days=PREVIEW_DAYS)
        if enrolment.ends_at is not None:
            until = min(until, enrolment.ends_at)
        start = first_start(enrolment)
        if start is not None and enrolment.planned_through is None:
            start = max(start, now)  # not planned yet: its start steps are still to come
        for index, step in enumerate(program.steps):
            seed = f"{enrolment.id}:{index}" if enrolment.id else f"preview:{index}"
            for number, occurrence in enumerate(occurrences(
                    step, zone, after=now, until=until, anchor=enrolment.anchor_at,
                    start=start, seed=seed)):
                if number >= limit:
                    break
                at = quiet.release(occurrence.at, zone)
                if step.pool and not enrolment.id:
                    key, text = f"one of {len(step.pool)} prompts", None
                else:
                    key = Planner.choose(step, enrolment.id or 0, number)
                    prompt = prompts.get(key)
                    text = prompt.text if prompt else None
                found.append(PlannedPrompt(at, at.astimezone(zone), key, text, source,
                                           step.window))
    for delivery in await session.scalars(select(Delivery).where(
            Delivery.client_id == client.id, Delivery.status == DeliveryStatus.PENDING,
            Delivery.enrolment_id.is_(None))):
        found.append(PlannedPrompt(delivery.due_at, delivery.due_at.astimezone(zone),
                                   delivery.prompt_key, delivery.prompt.get("text"), "sent by you"))
    found.sort(key=lambda p: p.at)
    return found[:limit]


def draft_enrolment(client: Client, program_key: str, library: Library, clock: Clock,
                    anchor: datetime | None) -> Enrolment:
    """An enrolment as `enrol` would make it, unsaved: for the preview, and checked the same way."""
    program = library.programs.get(program_key)
    if program is None:
        raise OnboardingError(f"there is no program {program_key!r}")
    check_anchor(program, anchor)
    now = clock.now()
    return Enrolment(client_id=client.id, program_key=program_key, anchor_at=anchor, starts_at=now,
                     ends_at=now + timedelta(days=program.duration_days)
                     if program.duration_days else None, created_at=now)


def check_anchor(program: Program, anchor: datetime | None) -> None:
    if program.anchor and program.anchor_required and anchor is None:
        raise OnboardingError(f"“{program.title}” is timed from the medicine session: "
                              "give its date and time")
    if anchor is not None and anchor.tzinfo is None:
        raise OnboardingError("the medicine session needs a time zone")


def _changeable(client: Client) -> None:
    if client.status is ClientStatus.STOPPED:
        raise OnboardingError("this client has stopped; their schedule cannot change until "
                              "they join again")


async def enrol(session: AsyncSession, client: Client, program_key: str, library: Library,
                clock: Clock, anchor: datetime | None = None) -> Enrolment:
    _changeable(client)
    draft_enrolment(client, program_key, library, clock, anchor)  # the same checks as the preview
    enrolment = await onboarding.enrol(session, client.id, program_key, library, clock, anchor=anchor)
    if client.status is ClientStatus.INVITED:
        enrolment.planned_through = None  # starts when they consent, as invite programs do
    return enrolment


async def end_enrolment(session: AsyncSession, client: Client, enrolment_id: int,
                        clock: Clock, *, keep_start: bool = False) -> Enrolment:
    """Stop a program: nothing more is planned, and what was planned but not sent is dropped
    (with `keep_start`, except what its start planned: a baseline still waiting for the
    morning stays, since the program carries on)."""
    enrolment = await session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.client_id != client.id or enrolment.ended_at is not None:
        raise OnboardingError("that program is not running for this client")
    enrolment.ended_at = clock.now()
    dropped = delete(Delivery).where(Delivery.enrolment_id == enrolment.id,
                                     Delivery.status == DeliveryStatus.PENDING)
    if keep_start:
        dropped = dropped.where(Delivery.dedupe_key.not_like("%:start"))
    await session.execute(dropped)
    return enrolment


async def change_anchor(session: AsyncSession, client: Client, enrolment_id: int,
                        anchor: datetime, library: Library, clock: Clock) -> Enrolment:
    """Move a program to a new medicine session: the old run ends, a new one starts from it
    (a step already sent from the old anchor is not suppressed in the new run)."""
    old = await session.get(Enrolment, enrolment_id)
    if old is None or old.client_id != client.id or old.ended_at is not None:
        raise OnboardingError("that program is not running for this client")
    await end_enrolment(session, client, enrolment_id, clock, keep_start=True)
    moved = await enrol(session, client, old.program_key, library, clock, anchor=anchor)
    # The same program carried on, not a new one: what it did once at its start (a baseline
    # questionnaire) is not done again.
    moved.continues_id = old.continues_id or old.id
    return moved


async def record_medicine_session(session: AsyncSession, client: Client, at: datetime,
                                  library: Library, clock: Clock, *, therapist_id: int | None,
                                  reanchor: bool = True) -> list[Enrolment]:
    """Record a session; with `reanchor`, every running program timed from a medicine session
    moves to this one. Returns the new enrolments."""
    if at.tzinfo is None:
        raise OnboardingError("the medicine session needs a time zone")
    session.add(MedicineSession(client_id=client.id, at=at, recorded_by=therapist_id,
                                created_at=clock.now()))
    moved = []
    if reanchor and client.status is not ClientStatus.STOPPED:
        for enrolment in await active_enrolments(session, client.id, clock.now()):
            program = library.programs.get(enrolment.program_key)
            if program is not None and program.anchor == "medicine_session":
                moved.append(await change_anchor(session, client, enrolment.id, at, library, clock))
    await session.flush()
    return moved


async def medicine_sessions(session: AsyncSession, client_id: int) -> list[datetime]:
    """Recorded sessions and the anchors programs were given, oldest first, without repeats."""
    recorded = set(await session.scalars(select(MedicineSession.at).where(
        MedicineSession.client_id == client_id)))
    anchors = set(await session.scalars(select(Enrolment.anchor_at).where(
        Enrolment.client_id == client_id, Enrolment.anchor_at.is_not(None))))
    return sorted(a for a in recorded | anchors if a is not None)


def personal_prompt(text: str) -> Prompt:
    """A prompt a therapist wrote for one client: words or a voice note in answer."""
    text = text.strip()
    if not text:
        raise OnboardingError("write the prompt's words, or choose one from the library")
    try:
        return Prompt(key=PERSONAL_KEY, kind=PromptKind.REFLECTION, text=text,
                      response=ResponseType.VOICE_OR_TEXT)
    except ValueError:
        raise OnboardingError("that prompt is too long for one Telegram message") from None


def chosen_prompt(library: Library, prompt_key: str | None, text: str | None) -> Prompt:
    if text and text.strip():
        return personal_prompt(text)
    if not prompt_key or prompt_key not in library.prompts:
        raise OnboardingError(f"there is no prompt {prompt_key!r} in the library")
    return library.prompts[prompt_key]


def recurring_step(prompt_key: str, at: str, weekdays: list[str]) -> Step:
    try:
        parse_hhmm(at)
        if weekdays:
            return Step(prompt=prompt_key, weekly=tuple(weekdays), at=at)  # type: ignore[arg-type]
        return Step(prompt=prompt_key, daily=at)
    except ValueError:
        raise OnboardingError("choose a time like 19:30 and, for some days only, the days") \
            from None


async def add_custom(session: AsyncSession, client: Client, prompt: Prompt, at: str,
                     weekdays: list[str], clock: Clock, *, weeks: int | None = None) -> Enrolment:
    """A recurring prompt for this client alone: daily, or on some weekdays, at a local time."""
    _changeable(client)
    step = recurring_step(prompt.key, at, weekdays)
    now = clock.now()
    enrolment = Enrolment(client_id=client.id, program_key=CUSTOM_PROGRAM, starts_at=now,
                          ends_at=now + timedelta(weeks=weeks) if weeks else None, created_at=now,
                          custom={"prompt": prompt_snapshot(prompt),
                                  "step": step.model_dump(mode="json", exclude_defaults=True)})
    session.add(enrolment)
    await session.flush()
    return enrolment


async def send_now(session: AsyncSession, client: Client, prompt: Prompt, clock: Clock,
                   settings: Settings) -> Delivery:
    """A one-off prompt due at once (moved to the end of quiet hours if it is night for them)."""
    if client.status is not ClientStatus.ACTIVE:
        raise OnboardingError(f"{client.display_name} is {client.status.value}; prompts go only "
                              "to clients who have agreed and not stopped")
    delivery = new_delivery(client, prompt, scheduled_for=clock.now(), settings=settings)
    session.add(delivery)
    await session.flush()
    return delivery


def pause(client: Client, days: int, clock: Clock) -> datetime | None:
    """A therapist's pause; the client sees nothing, prompts in it are skipped."""
    _changeable(client)
    if not 0 <= days <= controls.MAX_PAUSE_DAYS:
        raise OnboardingError(f"a pause is 1 to {controls.MAX_PAUSE_DAYS} days, or open-ended")
    return controls.pause(client, days, clock)


def resume(client: Client, clock: Clock) -> bool:
    return controls.resume(client, clock)


async def reissue_invite(session: AsyncSession, client: Client, clock: Clock,
                         settings: Settings) -> str:
    """A fresh invite link for a client who has not joined yet (the old ones stop working)."""
    if client.status is not ClientStatus.INVITED:
        raise OnboardingError(f"{client.display_name} has already joined")
    now = clock.now()
    for invite in await session.scalars(select(Invite).where(Invite.client_id == client.id,
                                                             Invite.used_at.is_(None))):
        invite.expires_at = min(invite.expires_at, now)
    token = new_token()
    session.add(Invite(client_id=client.id, token_hash=token_hash(token),
                       expires_at=now + timedelta(hours=settings.invite_ttl_hours), created_at=now))
    return token
