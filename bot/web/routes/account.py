"""The therapist's own things: alerts, the audit log of their clients, and their settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from bot.services import alerts, audit, practice, timezones
from bot.services.onboarding import OnboardingError
from bot.web.app import context, signed_in
from bot.web.rendering import back, page
from bot.web.security import SignedIn

router = APIRouter(include_in_schema=False)
User = Annotated[SignedIn, Depends(signed_in)]
CATEGORY_LABELS = {
    "suicidal": "thoughts of suicide", "self_harm": "self-harm",
    "danger_from_person": "danger from another person",
    "medical_emergency": "a medical emergency after a session",
    "high_activation": "very high activation twice in a row",
    "prolonged_shutdown": "shut down several days running",
}


@router.get("/alerts")
async def alert_list(request: Request, user: User) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await alerts.for_therapist(session, user.therapist_id)
        await audit.record(session, user.actor, "viewed_alerts", web.clock)
    return page(request, "alerts.html", user, rows=rows, labels=CATEGORY_LABELS)


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(request: Request, user: User, alert_id: int,
                      next_url: Annotated[str, Form(alias="next")] = "/alerts") -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        await alerts.acknowledge(session, user.actor, alert_id, web.clock)
    # Only a path on this site: "//host" and "/\\host" would leave it.
    target = next_url if next_url.startswith("/") and next_url[1:2] not in ("/", "\\") else "/alerts"
    return back(request, target, "Alert acknowledged.")


@router.get("/audit")
async def audit_page(request: Request, user: User) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        rows = await audit.entries(session, therapist_id=user.therapist_id, limit=300)
    return page(request, "audit.html", user, rows=rows)


@router.get("/settings")
async def settings_page(request: Request, user: User) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        therapist = await practice.therapist(session, user.therapist_id)
    return page(request, "settings.html", user, therapist=therapist,
                default_zone=web.settings.default_timezone,
                idle=web.settings.web_idle_minutes,
                retention_days=web.settings.reply_retention_days)


@router.post("/settings")
async def save_settings(request: Request, user: User,
                        digest_at: Annotated[str, Form()] = "",
                        digest_with_text: Annotated[bool, Form()] = False,
                        timezone: Annotated[str, Form()] = "") -> Response:
    from bot.services import digest

    web = context(request)
    if timezone and not timezones.is_zone(timezone):
        raise OnboardingError(f"{timezone!r} is not a time zone name, like Europe/Berlin")
    async with web.db.transaction() as session:
        therapist = await practice.therapist(session, user.therapist_id)
        digest.configure(therapist, digest_at or None, digest_with_text, timezone or None)
        await audit.record(session, user.actor, "changed_settings", web.clock)
    return back(request, "/settings", "Saved.")
