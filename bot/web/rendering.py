"""Pages: Jinja2 templates with the few filters the dashboard needs (times in a zone, rates)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.web.security import SignedIn, csrf_token

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(moment: datetime | None, zone: str | ZoneInfo | None = None, style: str = "full") -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    if style == "date":
        return f"{local:%a} {local.day} {local:%b %Y}"
    if style == "time":
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def _days_ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    elapsed = now - moment
    hours = int(elapsed.total_seconds() // 3600)
    if hours < 1:
        return "within the hour"
    if hours < 24:
        return "1 hour ago" if hours == 1 else f"{hours} hours ago"
    return "1 day ago" if elapsed.days == 1 else f"{elapsed.days} days ago"


TEMPLATES.env.filters["when"] = _when
TEMPLATES.env.filters["rate"] = _rate
TEMPLATES.env.globals["days_ago"] = _days_ago
STATUS_LABELS = {"invited": "Invited", "active": "Active", "paused": "Paused",
                 "stopped": "Stopped", "unreachable": "Unreachable"}
TEMPLATES.env.globals["status_label"] = lambda s: STATUS_LABELS.get(s, s)


def page(request: Request, template: str, user: SignedIn | None, *, status_code: int = 200,
         **values: Any) -> HTMLResponse:
    """A page with what every page shows: who is signed in, the CSRF token, a pending notice."""
    web = request.app.state.web
    notice = request.session.pop("notice", None) if "notice" in request.session else None
    return TEMPLATES.TemplateResponse(request, template, {
        "user": user, "csrf": csrf_token(request), "notice": notice, "now": web.clock.now(),
        "demo": web.demo, **values}, status_code=status_code)


def back(request: Request, url: str, notice: str | None = None) -> RedirectResponse:
    """After a change: to the page that shows it, with a short notice (Post/Redirect/Get)."""
    if notice:
        request.session["notice"] = notice
    return RedirectResponse(url, status_code=303)
