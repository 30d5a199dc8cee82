"""A client's schedule: programs (previewed before saving), personal prompts, one-offs now,
pauses, and medicine sessions that programs are anchored to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from bot.services import alerts, audit, schedules
from bot.web.app import context, signed_in
from bot.web.rendering import back, page
from bot.web.routes.clients import parse_local
from bot.web.security import SignedIn

router = APIRouter(include_in_schema=False)
User = Annotated[SignedIn, Depends(signed_in)]


def _client_url(client_id: int) -> str:
    return f"/clients/{client_id}#schedule"


@router.get("/clients/{client_id}/schedule/preview")
async def preview(request: Request, user: User, client_id: int, program: str,
                  anchor: str = "") -> Response:
    """The next ten prompts as they would be with this program added, before it is saved."""
    web = context(request)
    async with web.own_client(user, client_id, "previewed_schedule", detail=program) as (session, client):
        zone = schedules.client_zone(client, web.settings)
        moment = parse_local(anchor, zone)
        draft = schedules.draft_enrolment(client, program, web.library, web.clock, moment)
        planned = await schedules.upcoming(session, client, web.library, web.clock, web.settings,
                                           extra=draft)
    return page(request, "schedule_preview.html", user, client=client, zone=zone,
                program=web.library.programs[program], anchor=anchor, anchor_at=moment,
                planned=planned)


@router.post("/clients/{client_id}/enrolments")
async def enrol(request: Request, user: User, client_id: int, program: Annotated[str, Form()],
                anchor: Annotated[str, Form()] = "") -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "enrolled", detail=program) as (session, client):
        moment = parse_local(anchor, schedules.client_zone(client, web.settings))
        enrolment = await schedules.enrol(session, client, program, web.library, web.clock, moment)
        title = web.library.programs[enrolment.program_key].title
    await web.replan(client_id)
    return back(request, _client_url(client_id), f"Enrolled in “{title}”.")


@router.post("/clients/{client_id}/enrolments/{enrolment_id}/end")
async def end(request: Request, user: User, client_id: int, enrolment_id: int) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "ended_program",
                              detail=f"enrolment {enrolment_id}") as (session, client):
        await schedules.end_enrolment(session, client, enrolment_id, web.clock)
    return back(request, _client_url(client_id), "Program ended. Nothing more from it will be sent.")


@router.post("/clients/{client_id}/enrolments/{enrolment_id}/anchor")
async def move_anchor(request: Request, user: User, client_id: int, enrolment_id: int,
                      anchor: Annotated[str, Form()]) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "moved_anchor",
                              detail=f"enrolment {enrolment_id}") as (session, client):
        moment = parse_local(anchor, schedules.client_zone(client, web.settings))
        if moment is None:
            raise schedules.OnboardingError("give the medicine session's date and time")
        await schedules.change_anchor(session, client, enrolment_id, moment, web.library, web.clock)
    await web.replan(client_id)
    return back(request, _client_url(client_id), "The program now runs from the new date.")


@router.post("/clients/{client_id}/custom")
async def custom(request: Request, user: User, client_id: int, at: Annotated[str, Form()],
                 prompt_key: Annotated[str, Form()] = "", text: Annotated[str, Form()] = "",
                 days: Annotated[list[str] | None, Form()] = None,
                 weeks: Annotated[int | None, Form()] = None) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "added_custom_prompt",
                              detail=prompt_key or "personal") as (session, client):
        prompt = schedules.chosen_prompt(web.library, prompt_key, text)
        await schedules.add_custom(session, client, prompt, at, days or [], web.clock, weeks=weeks)
    await web.replan(client_id)
    return back(request, _client_url(client_id), "Recurring prompt added.")


@router.post("/clients/{client_id}/send")
async def send(request: Request, user: User, client_id: int,
               prompt_key: Annotated[str, Form()] = "",
               text: Annotated[str, Form()] = "") -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "sent_prompt",
                              detail=prompt_key or "personal") as (session, client):
        prompt = schedules.chosen_prompt(web.library, prompt_key, text)
        await schedules.send_now(session, client, prompt, web.clock, web.settings)
    return back(request, f"/clients/{client_id}#timeline",
                "Queued. It goes out now, or when their quiet hours end.")


@router.post("/clients/{client_id}/pause")
async def pause(request: Request, user: User, client_id: int,
                days: Annotated[int, Form()] = 0) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "paused",
                              detail=f"{days} days" if days else "until resumed") as (_, client):
        schedules.pause(client, days, web.clock)
    return back(request, _client_url(client_id), "Paused. Prompts due in the pause are skipped.")


@router.post("/clients/{client_id}/resume")
async def resume(request: Request, user: User, client_id: int) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "resumed") as (_, client):
        schedules.resume(client, web.clock)
    return back(request, _client_url(client_id), "Prompts start again.")


@router.post("/clients/{client_id}/sessions")
async def medicine_session(request: Request, user: User, client_id: int,
                           at: Annotated[str, Form()],
                           reanchor: Annotated[bool, Form()] = False) -> Response:
    web = context(request)
    async with web.own_client(user, client_id, "recorded_medicine_session") as (session, client):
        moment = parse_local(at, schedules.client_zone(client, web.settings))
        if moment is None:
            raise schedules.OnboardingError("give the medicine session's date and time")
        moved = await schedules.record_medicine_session(
            session, client, moment, web.library, web.clock, therapist_id=user.therapist_id,
            reanchor=reanchor)
        if moved:
            await audit.record(session, user.actor, "reanchored", web.clock, client_id=client_id,
                               detail=f"{len(moved)} programs")
    if moved:
        await web.replan(client_id)
    notice = "Medicine session recorded." + (
        f" {len(moved)} integration program(s) now run from it." if moved else "")
    return back(request, _client_url(client_id), notice)


@router.post("/clients/{client_id}/thresholds")
async def thresholds(request: Request, user: User, client_id: int,
                     intensity: Annotated[int | None, Form()] = None,
                     shutdown_days: Annotated[int | None, Form()] = None) -> Response:
    """This client's own check-in alert thresholds (empty: the practice's)."""
    web = context(request)
    async with web.own_client(user, client_id, "changed_thresholds",
                              detail=f"intensity {intensity}, days {shutdown_days}") as (_, client):
        alerts.set_thresholds(client, intensity, shutdown_days)
    return back(request, f"/clients/{client_id}#alerts", "Alert thresholds saved.")
