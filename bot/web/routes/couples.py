"""Couples: the therapist's couples, linking two clients, and one couple side by side (pages and
the JSON API). Every read and change goes through `couple_review.couple_for` (or, for linking,
the couples service's own check that both clients are this therapist's), and is audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit, couple_review, couples, practice
from bot.services.audit import Actor
from bot.services.records import CheckInPoint
from bot.web import charts
from bot.web.app import WebContext, context, signed_in
from bot.web.rendering import back, page
from bot.web.routes.clients import RANGES, parse_local
from bot.web.security import SignedIn

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["couples"])
User = Annotated[SignedIn, Depends(signed_in)]


async def _zone(web: WebContext, session: AsyncSession, therapist_id: int) -> ZoneInfo:
    """The therapist's own clock: a couple's partners may live in two zones."""
    therapist = await practice.therapist(session, therapist_id)
    return ZoneInfo(therapist.timezone or web.settings.default_timezone)


async def _replan(web: WebContext, client_ids: list[int]) -> None:
    if web.planner is not None:
        await web.planner.plan(client_ids)


async def _link(session: AsyncSession, web: WebContext, actor: Actor, first: int, second: int,
                program: str | None, anchor: datetime | None) -> int:
    """Link two of the therapist's clients (the service refuses anyone else's); audited."""
    assert actor.therapist_id is not None
    couple = await couples.link(session, first=first, second=second, clock=web.clock,
                                library=web.library, therapist_id=actor.therapist_id,
                                program=program, anchor=anchor)
    for client_id in (first, second):
        await audit.record(session, actor, "linked_couple", web.clock, client_id=client_id,
                           detail=f"couple {couple.id}" + (f", {program}" if program else ""))
    return couple.id


async def _enrol(session: AsyncSession, web: WebContext, actor: Actor, couple_id: int,
                 program: str, anchor: datetime | None) -> tuple[int, list[int]]:
    couple = await couple_review.couple_for(session, actor, couple_id, "enrolled_couple",
                                            web.clock, detail=program)
    enrolment = await couples.enrol(session, couple.id, program, web.library, web.clock, anchor)
    return enrolment.id, [p.client_id for p in couple.partners]


async def _send(session: AsyncSession, web: WebContext, actor: Actor, couple_id: int,
                prompt_key: str) -> int:
    await couple_review.couple_for(session, actor, couple_id, "sent_paired_prompt", web.clock,
                                   detail=prompt_key)
    group = await couples.send_now(session, couple_id, prompt_key, web.library, web.clock,
                                   web.settings)
    return group.id


# Pages ----------------------------------------------------------------------------------------

@router.get("/couples")
async def couple_list(request: Request, user: User) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await couples.couples(session, user.therapist_id)
        linkable = await couple_review.linkable_clients(session, user.therapist_id)
        zone = await _zone(web, session, user.therapist_id)
        await audit.record(session, user.actor, "viewed_couple_list", web.clock)
    for row in rows:
        row["program_titles"] = couple_review.program_titles(row["programs"], web.library)
    return page(request, "couples.html", user, rows=rows, linkable=linkable, zone=zone,
                programs=couple_review.couple_programs(web.library))


@router.post("/couples")
async def link(request: Request, user: User, first: Annotated[int, Form()],
               second: Annotated[int, Form()], program: Annotated[str, Form()] = "",
               anchor: Annotated[str, Form()] = "") -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        moment = parse_local(anchor, await _zone(web, session, user.therapist_id))
        couple_id = await _link(session, web, user.actor, first, second, program or None, moment)
    return back(request, f"/couples/{couple_id}",
                "Linked. Each partner is asked in their own chat whether they'd like paired "
                "prompts; they start once both agree.")


def _points(rows: list[dict[str, Any]]) -> list[CheckInPoint]:
    return [CheckInPoint(r["at"], r["state"], r["intensity"]) for r in rows]


@router.get("/couples/{couple_id}")
async def couple_page(request: Request, user: User, couple_id: int, days: int = 28) -> Response:
    web = context(request)
    days = days if days in RANGES else 28
    end = web.clock.now() + timedelta(minutes=1)
    start = end - timedelta(days=days)
    async with web.db.transaction() as session:
        couple = await couple_review.couple_for(session, user.actor, couple_id, "viewed_couple",
                                                web.clock, detail=f"last {days} days")
        shown = await couple_review.view(session, couple, web.library, since=start)
        sessions = await couple_review.medicine_sessions(session, couple)
        zone = await _zone(web, session, user.therapist_id)
    series = [(p.name, _points(shown.checkins.get(p.client_id, []))) for p in shown.partners]
    in_range = {p.client_id: [c for c in shown.checkins.get(p.client_id, [])
                              if start <= c["at"] <= end] for p in shown.partners}
    return page(request, "couple.html", user, couple=shown, zone=zone, days=days, ranges=RANGES,
                start=start, end=end, sessions=[s for s in sessions if start <= s <= end],
                chart=charts.couple_chart(series, sessions, start, end, zone),
                checkins=in_range, programs=couple_review.couple_programs(web.library),
                prompt_groups=couple_review.pairable_prompts(web.library))


@router.post("/couples/{couple_id}/enrolments")
async def enrol(request: Request, user: User, couple_id: int, program: Annotated[str, Form()],
                anchor: Annotated[str, Form()] = "") -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        moment = parse_local(anchor, await _zone(web, session, user.therapist_id))
        _id, partners = await _enrol(session, web, user.actor, couple_id, program, moment)
    await _replan(web, partners)
    return back(request, f"/couples/{couple_id}#schedule",
                "Enrolled. Paired prompts come at the program's times, in each partner's own time.")


@router.post("/couples/{couple_id}/send")
async def send(request: Request, user: User, couple_id: int,
               prompt_key: Annotated[str, Form()]) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        await _send(session, web, user.actor, couple_id, prompt_key)
    return back(request, f"/couples/{couple_id}#pairs",
                "Queued for both partners. Each one's quiet hours still apply.")


# The JSON API ---------------------------------------------------------------------------------

class PartnerOut(BaseModel):
    client_id: int
    name: str
    timezone: str | None
    agreed_at: datetime | None
    declined_at: datetime | None
    shares_by_default: bool | None = Field(description="the usual share choice, set on agreeing")


class CoupleOut(BaseModel):
    id: int
    state: str = Field(description="waiting for agreement, active or ended")
    created_at: datetime
    active_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    partners: list[PartnerOut]
    programs: list[str]


class CoupleDetail(CoupleOut):
    pair_groups: list[dict[str, Any]] = Field(description=(
        "every paired prompt and exercise, oldest first, with both partners' answers, each "
        "answer's share choice (shared, false: kept private, null: not chosen) and the timing"))
    checkins: dict[str, list[dict[str, Any]]] = Field(description="by client id, oldest first")
    medicine_sessions: list[datetime]


class LinkIn(BaseModel):
    first_client_id: int
    second_client_id: int
    program: str | None = Field(None, description="a couple program, started once both agree")
    anchor: datetime | None = Field(None, description="the medicine session, with its UTC offset")


class CoupleEnrol(BaseModel):
    program: str
    anchor: datetime | None = None


class PairedPrompt(BaseModel):
    prompt_key: str = Field(description="a library prompt that is not a check-in")


class Done(BaseModel):
    ok: bool = True
    id: int | None = None


@api_router.get("/couples", response_model=list[CoupleOut], summary="Your couples")
async def api_couples(request: Request, user: User) -> list[dict[str, Any]]:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await couples.couples(session, user.therapist_id)
        await audit.record(session, user.actor, "viewed_couple_list", web.clock)
    return rows


@api_router.post("/couples", response_model=Done, status_code=201,
                 summary="Link two of your clients as a couple (each is asked to agree)")
async def api_link(request: Request, user: User, body: LinkIn) -> Done:
    web = context(request)
    async with web.db.transaction() as session:
        couple_id = await _link(session, web, user.actor, body.first_client_id,
                                body.second_client_id, body.program, body.anchor)
    return Done(id=couple_id)


@api_router.get("/couples/{couple_id}", response_model=CoupleDetail,
                summary="One couple side by side: paired answers, share choices, check-ins")
async def api_couple(request: Request, user: User, couple_id: int) -> dict[str, Any]:
    web = context(request)
    async with web.db.transaction() as session:
        couple = await couple_review.couple_for(session, user.actor, couple_id, "viewed_couple",
                                                web.clock)
        found = await couples.side_by_side(session, couple.id)
        sessions = await couple_review.medicine_sessions(session, couple)
    return {**found, "checkins": {str(k): v for k, v in found["checkins"].items()},
            "medicine_sessions": sessions}


@api_router.post("/couples/{couple_id}/enrolments", response_model=Done, status_code=201,
                 summary="Enrol the couple in a couple program")
async def api_enrol(request: Request, user: User, couple_id: int, body: CoupleEnrol) -> Done:
    web = context(request)
    async with web.db.transaction() as session:
        enrolment_id, partners = await _enrol(session, web, user.actor, couple_id, body.program,
                                              body.anchor)
    await _replan(web, partners)
    return Done(id=enrolment_id)


@api_router.post("/couples/{couple_id}/prompts", response_model=Done, status_code=201,
                 summary="Send both partners a paired prompt now (quiet hours still apply)")
async def api_send(request: Request, user: User, couple_id: int, body: PairedPrompt) -> Done:
    web = context(request)
    async with web.db.transaction() as session:
        group_id = await _send(session, web, user.actor, couple_id, body.prompt_key)
    return Done(id=group_id)
