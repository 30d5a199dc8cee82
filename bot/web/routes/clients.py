"""Clients: the list, inviting one (link and QR code), one client's record, and exports."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Enrolment
from bot.library.schema import PromptKind
from bot.services import alerts as alerts_service
from bot.services import (
    audit,
    couple_review,
    fhir,
    onboarding,
    practice,
    questionnaires,
    records,
    review,
    schedules,
    timezones,
)
from bot.services.onboarding import OnboardingError
from bot.web import charts
from bot.web.app import WebContext, context, signed_in
from bot.web.rendering import page
from bot.web.security import SignedIn

router = APIRouter(include_in_schema=False)
User = Annotated[SignedIn, Depends(signed_in)]
DEMO_USERNAME = "InterludeDemoBot"
RANGES = (14, 28, 90, 365)


async def bot_username(web: WebContext, session: AsyncSession) -> str:
    if web.settings.bot_username:
        return web.settings.bot_username.lstrip("@")
    return web.bot_username or await review.bot_username(session) or DEMO_USERNAME


def qr_svg(link: str) -> Markup:
    svg = segno.make(link, error="m").svg_inline(scale=5, border=2, dark="#1d2b36", light="#ffffff")
    return Markup(svg)  # noqa: S704 - segno writes the SVG; the link is our own URL


def parse_local(value: str, zone: ZoneInfo) -> datetime | None:
    """A datetime-local field ("2026-03-01T10:00") read on the client's clock."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise OnboardingError("give the date and time like 2026-03-01 10:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/clients", status_code=303)


@router.get("/clients")
async def client_list(request: Request, user: User, q: str = "", status: str = "",
                      program: str = "", alerts: bool = False, quiet: bool = False) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await practice.summaries(session, user.therapist_id, web.library, web.clock)
        await audit.record(session, user.actor, "viewed_client_list", web.clock)
    now = web.clock.now()
    shown = practice.matching(rows, search=q, status=status, program=program, alerts_only=alerts,
                              quiet_only=quiet, now=now)
    programs = sorted({p for row in rows for p in row.programs})
    return page(request, "clients.html", user, rows=shown, total=len(rows), programs=programs,
                filters={"q": q, "status": status, "program": program, "alerts": alerts,
                         "quiet": quiet})


def _prompt_groups(web: WebContext) -> list[tuple[str, list[str]]]:
    return [(kind.value, sorted(k for k, p in web.library.prompts.items() if p.kind is kind))
            for kind in PromptKind if any(p.kind is kind for p in web.library.prompts.values())]


@router.get("/clients/new")
async def invite_form(request: Request, user: User) -> Response:
    web = context(request)
    return page(request, "invite_new.html", user, programs=web.library.programs.values(),
                zones=timezones_list(web), default_zone=web.settings.default_timezone)


def timezones_list(web: WebContext) -> list[str]:
    likely = {zone for zones in timezones.LIKELY_ZONES.values() for zone in zones}
    return sorted({web.settings.default_timezone, *likely})


@router.post("/clients")
async def invite(request: Request, user: User, name: Annotated[str, Form()],
                 program: Annotated[str, Form()] = "", anchor: Annotated[str, Form()] = "",
                 timezone: Annotated[str, Form()] = "") -> Response:
    web = context(request)
    zone_name = timezone.strip() or web.settings.default_timezone
    if not timezones.is_zone(zone_name):
        raise OnboardingError(f"{zone_name!r} is not a time zone name, like Europe/Berlin")
    async with web.db.transaction() as session:
        issued = await onboarding.invite_client(
            session, therapist_id=user.therapist_id, name=name, clock=web.clock,
            settings=web.settings, library=web.library, program=program or None,
            anchor=parse_local(anchor, ZoneInfo(zone_name)), timezone=zone_name)
        await audit.record(session, user.actor, "invited_client", web.clock,
                           client_id=issued.id, detail=program or None)
        link = review.deep_link(await bot_username(web, session), issued.token)
    return page(request, "invite_done.html", user, client_id=issued.id, name=name.strip(),
                link=link, token=issued.token, qr=qr_svg(link),
                hours=web.settings.invite_ttl_hours)


@router.post("/clients/{client_id}/invite")
async def new_invite(request: Request, user: User, client_id: int) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "new_invite_link") as (session, client):
        token = await schedules.reissue_invite(session, client, web.clock, web.settings)
        link = review.deep_link(await bot_username(web, session), token)
        name = client.display_name
    return page(request, "invite_done.html", user, client_id=client_id, name=name, link=link,
                token=token, qr=qr_svg(link), hours=web.settings.invite_ttl_hours)


def _range(web: WebContext, days: int) -> tuple[datetime, datetime, int]:
    days = days if days in RANGES else 28
    end = web.clock.now() + timedelta(minutes=1)  # what happened this very minute counts too
    return end - timedelta(days=days), end, days


@router.get("/clients/{client_id}")
async def client_page(request: Request, user: User, client_id: int, days: int = 28) -> Response:
    web = context(request)
    start, end, days = _range(web, days)
    async with web.own_client(user, client_id, "viewed_client",
                              detail=f"last {days} days") as (session, client):
        zone = schedules.client_zone(client, web.settings)
        summary = next(r for r in await practice.summaries(
            session, user.therapist_id, web.library, web.clock) if r.id == client.id)
        sessions = await schedules.medicine_sessions(session, client.id)
        trend = await records.trends(session, client.id, start, end, sessions)
        entries = await records.timeline(session, client.id, start=start, end=end)
        enrolments = await schedules.active_enrolments(session, client.id, end)
        upcoming = await schedules.upcoming(session, client, web.library, web.clock, web.settings)
        alerts = list(await session.scalars(select(Alert).where(Alert.client_id == client.id)
                                            .order_by(Alert.created_at.desc()).limit(20)))
        history = await audit.entries(session, therapist_id=user.therapist_id,
                                      client_id=client.id, limit=15)
        ended = list(await session.scalars(select(Enrolment).where(
            Enrolment.client_id == client.id, Enrolment.ended_at.is_not(None))
            .order_by(Enrolment.ended_at.desc()).limit(10)))
        couple_links = await couple_review.couples_of(session, client.id)
        measures = questionnaires.trends(await questionnaires.results(session, client.id))
    return page(
        request, "client.html", user, client=client, summary=summary, zone=zone, days=days,
        ranges=RANGES, entries=entries, enrolments=enrolments, ended=ended, planned=upcoming,
        sessions=sessions, alerts=alerts, history=history, start=start, end=end,
        titles={e.id: practice.program_title(e, web.library) for e in [*enrolments, *ended]},
        limits=alerts_service.thresholds(client, web.settings),
        checkin_svg=charts.checkin_chart(trend.checkins, sessions, start, end, zone),
        answers_svg=charts.answer_rate_chart(trend.weeks, sessions, start, end),
        trend=trend, programs=web.library.programs.values(), prompt_groups=_prompt_groups(web),
        weekdays=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), couple_links=couple_links,
        measures=measures, measure_svgs=measure_charts(measures, sessions, web, zone))


def measure_charts(measures: list[questionnaires.Trend], sessions: list[datetime],
                   web: WebContext, zone: ZoneInfo) -> dict[str, Markup]:
    """Each questionnaire's chart, over its whole history (a course runs longer than the
    page's period): from a little before the first score or session to now."""
    now = web.clock.now()
    firsts = [t.results[0].at for t in measures if t.results] + sessions[:1]
    start = min([*firsts, now - timedelta(days=28)]) - timedelta(days=2)
    end = max([now, *sessions]) + timedelta(days=1)
    return {t.key: charts.score_chart(t, sessions, start, end, zone,
                                      "scores-" + t.key.replace(".", "-")) for t in measures}


@router.get("/clients/{client_id}/questionnaires.csv")
async def questionnaires_csv(request: Request, user: User, client_id: int) -> Response:
    """Every questionnaire the client began: score, band, change from baseline, each item."""
    web = context(request)
    async with web.own_client(user, client_id, "exported",
                              detail="questionnaires csv") as (session, _):
        found = await questionnaires.results(session, client_id)
    return Response(questionnaires.export_csv(client_id, found),
                    media_type="text/csv; charset=utf-8", headers={
                        "content-disposition":
                        f'attachment; filename="client-{client_id}-questionnaires.csv"'})


@router.get("/clients/{client_id}/fhir.json")
async def fhir_bundle(request: Request, user: User, client_id: int) -> Response:
    """The questionnaires as a FHIR R4 Bundle, to import into a health record."""
    web = context(request)
    async with web.own_client(user, client_id, "exported", detail="fhir") as (session, client):
        body = fhir.bundle(client, await questionnaires.results(session, client_id),
                           web.clock.now())
    return Response(json.dumps(body, ensure_ascii=False, indent=2),
                    media_type="application/fhir+json", headers={
                        "content-disposition":
                        f'attachment; filename="client-{client_id}-fhir-bundle.json"'})


@router.get("/clients/{client_id}/voice/{reply_id}")
async def voice(request: Request, user: User, client_id: int, reply_id: int) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "played_voice_note",
                              detail=f"reply {reply_id}") as (session, _):
        note = await records.voice_note(session, client_id, reply_id)
    if note is None:
        raise practice.NotFound("no such voice note")
    return Response(note.content, media_type=note.mime_type)


def _export_range(web: WebContext, start: str, end: str) -> tuple[datetime | None, datetime | None]:
    def day(value: str, zone: ZoneInfo) -> datetime | None:
        if not value:
            return None
        try:
            return datetime.combine(datetime.fromisoformat(value).date(), time(0), tzinfo=zone)
        except ValueError:
            raise OnboardingError("dates look like 2026-03-01") from None
    zone = ZoneInfo(web.settings.default_timezone)
    until = day(end, zone)
    return day(start, zone), until + timedelta(days=1) if until else None


@router.get("/clients/{client_id}/export.csv")
async def export_csv(request: Request, user: User, client_id: int, start: str = "",
                     end: str = "") -> Response:
    web = context(request)
    begin, until = _export_range(web, start, end)
    async with web.own_client(user, client_id, "exported", detail="csv") as (session, _):
        entries = await records.timeline(session, client_id, start=begin, end=until)
    return Response(records.export_csv(entries), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="client-{client_id}-replies.csv"'})


@router.get("/clients/{client_id}/export.json")
async def export_json(request: Request, user: User, client_id: int, start: str = "",
                      end: str = "") -> Response:
    web = context(request)
    begin, until = _export_range(web, start, end)
    async with web.own_client(user, client_id, "exported", detail="json") as (session, client):
        entries = await records.timeline(session, client_id, start=begin, end=until)
        body = {"client": {"id": client.id, "name": client.display_name,
                           "timezone": client.timezone},
                "exported_at": web.clock.now().isoformat(),
                "entries": [e.as_json() for e in sorted(entries, key=lambda e: e.at)]}
    return Response(json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json",
                    headers={"content-disposition":
                             f'attachment; filename="client-{client_id}-replies.json"'})


@router.get("/clients/{client_id}/summary")
async def summary_print(request: Request, user: User, client_id: int, start: str = "",
                        end: str = "") -> Response:
    """A printable summary of a date range with the trend charts (the browser prints to PDF)."""
    web = context(request)
    now = web.clock.now()
    begin, until = _export_range(web, start, end)
    until = until or now
    begin = begin or until - timedelta(days=28)
    if begin >= until:
        raise OnboardingError("the summary's first day must come before its last")
    async with web.own_client(user, client_id, "printed_summary",
                              detail=f"{begin:%Y-%m-%d} to {until:%Y-%m-%d}") as (session, client):
        zone = schedules.client_zone(client, web.settings)
        sessions = await schedules.medicine_sessions(session, client.id)
        trend = await records.trends(session, client.id, begin, until, sessions)
        entries = await records.timeline(session, client.id, start=begin, end=until)
    return page(request, "summary.html", user, client=client, zone=zone, start=begin,
                end=until - timedelta(seconds=1), entries=sorted(entries, key=lambda e: e.at),
                trend=trend, sessions=[s for s in sessions if begin <= s < until],
                checkin_svg=charts.checkin_chart(trend.checkins, sessions, begin, until, zone,
                                                 "print-checkins"),
                answers_svg=charts.answer_rate_chart(trend.weeks, sessions, begin, until,
                                                     "print-answers"))
