"""The JSON API (`/api/...`): the dashboard's data and actions for a practice's own tools.

Authenticated as the dashboard is (the session cookie from a sign-in link); every POST and
DELETE carries the CSRF token from GET /api/session in an X-CSRF-Token header. The same
services as the pages and the Telegram commands; the same audit entries (channel "api").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from bot.services import (
    alerts,
    audit,
    fhir,
    onboarding,
    practice,
    questionnaires,
    records,
    review,
    schedules,
)
from bot.services.onboarding import OnboardingError
from bot.web.app import context, signed_in
from bot.web.routes.clients import bot_username
from bot.web.security import SignedIn, csrf_token

router = APIRouter(prefix="/api", tags=["api"])
User = Annotated[SignedIn, Depends(signed_in)]


class SessionInfo(BaseModel):
    therapist_id: int
    name: str
    csrf_token: str


class ClientOut(BaseModel):
    id: int
    name: str
    status: str = Field(description="invited, active, paused, stopped or unreachable")
    programs: list[str]
    timezone: str | None
    paused_until: datetime | None
    last_reply_at: datetime | None
    answer_rate_14d: float | None
    prompts_sent_14d: int
    prompts_answered_14d: int
    open_alerts: int


class EnrolmentOut(BaseModel):
    id: int
    program_key: str
    title: str
    anchor_at: datetime | None
    starts_at: datetime
    ends_at: datetime | None


class ClientDetail(ClientOut):
    quiet_hours: list[str]
    enrolments: list[EnrolmentOut]
    medicine_sessions: list[datetime]


class Invite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    program: str | None = None
    anchor: datetime | None = Field(None, description="the medicine session, with its UTC offset")
    timezone: str | None = None


class InviteOut(BaseModel):
    client_id: int
    link: str


class Enrol(BaseModel):
    program: str
    anchor: datetime | None = None


class PromptChoice(BaseModel):
    prompt_key: str | None = Field(None, description="a prompt from the library")
    text: str | None = Field(None, description="or the therapist's own words")


class Recurring(PromptChoice):
    at: str = Field(description="the client's local time, HH:MM")
    days: list[str] = Field(default_factory=list, description="mon..sun; empty: every day")
    weeks: int | None = Field(None, ge=1, le=52)


class Pause(BaseModel):
    days: int = Field(0, ge=0, le=90, description="0: until resumed")


class MedicineSessionIn(BaseModel):
    at: datetime
    reanchor: bool = True


class Thresholds(BaseModel):
    intensity: int | None = Field(None, ge=1, le=10, description="null: the practice's")
    shutdown_days: int | None = Field(None, ge=1, le=14, description="null: the practice's")


class Done(BaseModel):
    ok: bool = True
    id: int | None = None


def _client_out(row: practice.ClientSummary) -> dict[str, Any]:
    return row.as_json()


@router.get("/session", response_model=SessionInfo, summary="Who is signed in, and the CSRF token")
async def session_info(request: Request, user: User) -> SessionInfo:
    """Send `csrf_token` as the X-CSRF-Token header with every POST and DELETE."""
    return SessionInfo(therapist_id=user.therapist_id, name=user.name,
                       csrf_token=csrf_token(request))


@router.get("/clients", response_model=list[ClientOut], summary="Your clients")
async def list_clients(request: Request, user: User, q: str = "", status: str = "",
                       program: str = "") -> list[dict[str, Any]]:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await practice.summaries(session, user.therapist_id, web.library, web.clock)
        await audit.record(session, user.actor, "viewed_client_list", web.clock)
    return [_client_out(r) for r in practice.matching(rows, search=q, status=status, program=program)]


@router.post("/clients", response_model=InviteOut, status_code=201, summary="Invite a client")
async def invite(request: Request, user: User, body: Invite) -> InviteOut:
    web = context(request)
    async with web.db.transaction() as session:
        issued = await onboarding.invite_client(
            session, therapist_id=user.therapist_id, name=body.name, clock=web.clock,
            settings=web.settings, library=web.library, program=body.program, anchor=body.anchor,
            timezone=body.timezone)
        await audit.record(session, user.actor, "invited_client", web.clock, client_id=issued.id,
                           detail=body.program)
        link = review.deep_link(await bot_username(web, session), issued.token)
    return InviteOut(client_id=issued.id, link=link)


@router.get("/clients/{client_id}", response_model=ClientDetail, summary="One client")
async def client_detail(request: Request, user: User, client_id: int) -> dict[str, Any]:
    web = context(request)
    async with web.own_client(user, client_id, "viewed_client") as (session, client):
        row = next(r for r in await practice.summaries(
            session, user.therapist_id, web.library, web.clock) if r.id == client.id)
        enrolments = await schedules.active_enrolments(session, client.id, web.clock.now())
        sessions = await schedules.medicine_sessions(session, client.id)
    return {**_client_out(row), "quiet_hours": [client.quiet_start, client.quiet_end],
            "medicine_sessions": sessions,
            "enrolments": [{"id": e.id, "program_key": e.program_key,
                            "title": practice.program_title(e, web.library), "anchor_at": e.anchor_at,
                            "starts_at": e.starts_at, "ends_at": e.ends_at} for e in enrolments]}


@router.get("/clients/{client_id}/timeline", summary="Prompts sent and what came back")
async def timeline(request: Request, user: User, client_id: int,
                   start: Annotated[datetime | None, Query(alias="from")] = None,
                   end: Annotated[datetime | None, Query(alias="to")] = None) -> list[dict[str, Any]]:
    """Newest first; each prompt with the words it was sent with, check-ins and answers."""
    web = context(request)
    async with web.own_client(user, client_id, "viewed_timeline") as (session, _):
        entries = await records.timeline(session, client_id, start=start, end=end)
    return [e.as_json() for e in entries]


@router.get("/clients/{client_id}/trends", summary="Check-ins and answer rate over time")
async def trends(request: Request, user: User, client_id: int,
                 days: Annotated[int, Query(ge=1, le=366)] = 28) -> dict[str, Any]:
    web = context(request)
    end = web.clock.now() + timedelta(minutes=1)
    async with web.own_client(user, client_id, "viewed_trends") as (session, _):
        sessions = await schedules.medicine_sessions(session, client_id)
        found = await records.trends(session, client_id, end - timedelta(days=days), end, sessions)
    return found.as_json()


@router.get("/clients/{client_id}/questionnaires",
            summary="Questionnaire scores (PHQ-9, GAD-7): trends, change from baseline, each response")
async def questionnaire_scores(request: Request, user: User, client_id: int) -> dict[str, Any]:
    """Per questionnaire: baseline, latest, change, response (at least 50% lower than the
    baseline) and remission (under the instrument's cut-off); then every response with its
    answers. Medicine sessions are given for charting against them."""
    web = context(request)
    async with web.own_client(user, client_id, "viewed_questionnaires") as (session, _):
        found = await questionnaires.results(session, client_id)
        sessions = await schedules.medicine_sessions(session, client_id)
    measured = questionnaires.trends(found)
    by_key = {t.key: t for t in measured}
    return {"questionnaires": [t.as_json() for t in measured],
            "responses": [questionnaires.result_json(r, by_key.get(r.key)) for r in found],
            "medicine_sessions": [s.isoformat() for s in sessions]}


@router.get("/clients/{client_id}/fhir", summary="Questionnaires as a FHIR R4 Bundle")
async def fhir_bundle(request: Request, user: User, client_id: int) -> dict[str, Any]:
    """A `collection` Bundle: the Patient, a QuestionnaireResponse per questionnaire begun and
    an Observation per total (LOINC 44261-6 for PHQ-9, 70274-6 for GAD-7)."""
    web = context(request)
    async with web.own_client(user, client_id, "exported", detail="fhir") as (session, client):
        return fhir.bundle(client, await questionnaires.results(session, client_id),
                           web.clock.now())


@router.get("/clients/{client_id}/upcoming", summary="The next prompts, in the client's time")
async def upcoming(request: Request, user: User, client_id: int,
                   limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[dict[str, Any]]:
    web = context(request)
    async with web.own_client(user, client_id, "viewed_schedule") as (session, client):
        planned = await schedules.upcoming(session, client, web.library, web.clock, web.settings,
                                           limit=limit)
    return [p.as_json() for p in planned]


@router.post("/clients/{client_id}/enrolments", response_model=Done, status_code=201,
             summary="Enrol the client in a program")
async def enrol(request: Request, user: User, client_id: int, body: Enrol) -> Done:
    web = context(request)
    async with web.own_client(user, client_id, "enrolled", detail=body.program) as (session, client):
        enrolment = await schedules.enrol(session, client, body.program, web.library, web.clock,
                                          body.anchor)
    await web.replan(client_id)
    return Done(id=enrolment.id)


@router.delete("/clients/{client_id}/enrolments/{enrolment_id}", response_model=Done,
               summary="End a program")
async def end_enrolment(request: Request, user: User, client_id: int, enrolment_id: int) -> Done:
    web = context(request)
    async with web.own_client(user, client_id, "ended_program",
                              detail=f"enrolment {enrolment_id}") as (session, client):
        await schedules.end_enrolment(session, client, enrolment_id, web.clock)
    return Done(id=enrolment_id)


@router.post("/clients/{client_id}/prompts", response_model=Done, status_code=201,
             summary="Send a prompt now (quiet hours still apply)")
async def send_now(request: Request, user: User, client_id: int, body: PromptChoice) -> Done:
    web = context(request)
    async with web.own_client(user, client_id, "sent_prompt",
                              detail=body.prompt_key or "personal") as (session, client):
        prompt = schedules.chosen_prompt(web.library, body.prompt_key, body.text)
        delivery = await schedules.send_now(session, client, prompt, web.clock, web.settings)
    return Done(id=delivery.id)


@router.post("/clients/{client_id}/recurring", response_model=Done, status_code=201,
             summary="Add a recurring prompt for this client")
async def recurring(request: Request, user: User, client_id: int, body: Recurring) -> Done:
    web = context(request)
    async with web.own_client(user, client_id, "added_custom_prompt",
                              detail=body.prompt_key or "personal") as (session, client):
        prompt = schedules.chosen_prompt(web.library, body.prompt_key, body.text)
        enrolment = await schedules.add_custom(session, client, prompt, body.at, body.days,
                                               web.clock, weeks=body.weeks)
    await web.replan(client_id)
    return Done(id=enrolment.id)


@router.post("/clients/{client_id}/pause", response_model=Done, summary="Pause prompts")
async def pause(request: Request, user: User, client_id: int, body: Pause) -> Done:
    web = context(request)
    detail = f"{body.days} days" if body.days else "until resumed"
    async with web.own_client(user, client_id, "paused", detail=detail) as (_, client):
        schedules.pause(client, body.days, web.clock)
    return Done(id=client_id)


@router.post("/clients/{client_id}/resume", response_model=Done, summary="Resume prompts")
async def resume(request: Request, user: User, client_id: int) -> Done:
    web = context(request)
    async with web.own_client(user, client_id, "resumed") as (_, client):
        schedules.resume(client, web.clock)
    return Done(id=client_id)


@router.post("/clients/{client_id}/medicine-sessions", response_model=Done, status_code=201,
             summary="Record a medicine session; move integration programs to it")
async def medicine_session(request: Request, user: User, client_id: int,
                           body: MedicineSessionIn) -> Done:
    web = context(request)
    if body.at.tzinfo is None:
        raise OnboardingError("the medicine session needs its UTC offset")
    async with web.own_client(user, client_id, "recorded_medicine_session") as (session, client):
        moved = await schedules.record_medicine_session(
            session, client, body.at, web.library, web.clock, therapist_id=user.therapist_id,
            reanchor=body.reanchor)
    if moved:
        await web.replan(client_id)
    return Done(id=client_id)


@router.post("/clients/{client_id}/thresholds", response_model=Done,
             summary="The client's own check-in alert thresholds")
async def thresholds(request: Request, user: User, client_id: int, body: Thresholds) -> Done:
    web = context(request)
    detail = f"intensity {body.intensity}, days {body.shutdown_days}"
    async with web.own_client(user, client_id, "changed_thresholds", detail=detail) as (_, client):
        alerts.set_thresholds(client, body.intensity, body.shutdown_days)
    return Done(id=client_id)


@router.get("/alerts", summary="Your alerts, newest first")
async def alert_list(request: Request, user: User, open_only: Annotated[bool, Query(alias="open")] = False
                     ) -> list[dict[str, Any]]:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await alerts.for_therapist(session, user.therapist_id, open_only=open_only)
        await audit.record(session, user.actor, "viewed_alerts", web.clock)
    return [r.as_json() for r in rows]


@router.post("/alerts/{alert_id}/ack", response_model=Done, summary="Acknowledge an alert")
async def acknowledge(request: Request, user: User, alert_id: int) -> Done:
    web = context(request)
    async with web.db.transaction() as session:
        await alerts.acknowledge(session, user.actor, alert_id, web.clock)
    return Done(id=alert_id)


@router.get("/library/prompts", summary="The prompt library")
async def library_prompts(request: Request, user: User) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in context(request).library.prompts.values()]


@router.get("/library/programs", summary="The programs")
async def library_programs(request: Request, user: User) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json", exclude_defaults=True)
            for p in context(request).library.programs.values()]


@router.get("/audit", summary="Who viewed or changed your clients' data")
async def audit_log(request: Request, user: User,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, object]]:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await audit.entries(session, therapist_id=user.therapist_id, limit=limit)
    return [r.as_json() for r in rows]
