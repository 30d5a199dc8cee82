"""The dashboard and its JSON API: one ASGI app, served by the bot's own process (review path).

Pages and API routes call the same services as the therapist commands in Telegram. Every route
goes through three gates, in this order: the signed session cookie (SessionMiddleware), the CSRF
check for anything that may change data (an app-wide dependency, so a new route is covered
without remembering to), and `signed_in` for everything but the sign-in pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.models import Client, Therapist
from bot.library import Library
from bot.scheduling.planner import Planner
from bot.services import practice
from bot.services.onboarding import OnboardingError
from bot.services.practice import NotFound
from bot.web.security import CsrfRefused, SignedIn, SignInRequired, check_csrf, end_session

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "interlude_session"
SESSION_MAX_AGE = 12 * 3600  # a session ends after this long, however busy


@dataclass
class DemoInfo:
    """What the demo page needs: the emulator's chat page and the demo therapist."""

    chat_url: str
    therapist_id: int
    invites: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class WebContext:
    db: Database
    library: Library
    clock: Clock
    settings: Settings
    secret_key: str
    planner: Planner | None = None  # plans a changed schedule at once, when the bot runs here
    bot_username: str | None = None
    demo: DemoInfo | None = None

    async def replan(self, client_id: int) -> None:
        if self.planner is not None:
            await self.planner.plan([client_id])

    @asynccontextmanager
    async def own_client(self, user: SignedIn, client_id: int, action: str, *,
                         detail: str | None = None) -> AsyncIterator[tuple[AsyncSession, Client]]:
        """A transaction with one of the signed-in therapist's own clients (else NotFound).

        The action is written to the audit log: the one way a route reaches a client's data.
        """
        async with self.db.transaction() as session:
            client = await practice.client_for(session, user.actor, client_id, action, self.clock,
                                               detail=detail)
            yield session, client


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


async def signed_in(request: Request) -> SignedIn:
    """The signed-in therapist, or SignInRequired (idle too long, signed out everywhere)."""
    web = context(request)
    session = request.session
    therapist_id, seen = session.get("therapist"), session.get("seen")
    if not isinstance(therapist_id, int) or not isinstance(seen, int | float):
        raise SignInRequired()
    now = web.clock.now().timestamp()
    since = session.get("since", seen)
    if now - seen > web.settings.web_idle_minutes * 60 or now - since > SESSION_MAX_AGE:
        end_session(request)
        raise SignInRequired()
    async with web.db.transaction() as db_session:
        therapist = await db_session.get(Therapist, therapist_id)
        if therapist is None or therapist.session_epoch != session.get("epoch"):
            end_session(request)
            raise SignInRequired()
        name = therapist.display_name
    session["seen"] = now
    channel = "api" if request.url.path.startswith("/api/") else "web"
    return SignedIn(therapist_id, name, channel)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _refusal(request: Request, status_code: int, body: dict[str, Any], *, title: str,
             message: str) -> Response:
    """The same refusal as JSON for the API and as a page for the dashboard."""
    if _wants_json(request):
        return JSONResponse(body, status_code=status_code)
    from bot.web.rendering import page
    return page(request, "error.html", None, status_code=status_code, title=title, message=message)


def create_app(web: WebContext) -> FastAPI:
    from bot.services.couples import CoupleError
    from bot.web.routes import account, api, clients, couples, demo, library, schedule, signin

    app = FastAPI(
        title="Interlude practice API",
        version="1",
        description=(
            "A therapist's clients, their answers, check-in trends and schedules, for a "
            "practice's own tools. Sign in as in the dashboard (a one-time link from /dashboard "
            "in Telegram or `interlude login-link`), keep the session cookie, and send the "
            "CSRF token from GET /api/session in an X-CSRF-Token header with every change."
        ),
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
        dependencies=[Depends(check_csrf)],
    )
    app.state.web = web

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _error: SignInRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _error: CsrfRefused) -> Response:
        return _refusal(request, 403, {"detail": "missing or wrong CSRF token"},
                        title="This form has expired",
                        message="Please go back, reload the page and try again.")

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, _error: NotFound) -> Response:
        return _refusal(request, 404, {"detail": "not found"}, title="Not found",
                        message="There is nothing here, or it is not one of your clients.")

    @app.exception_handler(OnboardingError)
    @app.exception_handler(CoupleError)
    async def _refused(request: Request, error: Exception) -> Response:
        return _refusal(request, 400, {"detail": str(error)}, title="That did not work",
                        message=str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        # The standard answer echoes the input back; this one names the fields only.
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) for e in error.errors()})
        return _refusal(request, 422, {"detail": "invalid request", "fields": fields},
                        title="Please check the form",
                        message="Something in the form is missing or not valid: " + ", ".join(fields))

    for module in (signin, clients, couples, schedule, library, account, api, demo):
        app.include_router(module.router)
    app.include_router(couples.api_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    https = web.settings.web_url.startswith("https://")
    app.add_middleware(SessionMiddleware, secret_key=web.secret_key,
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE,
                       same_site="lax", https_only=https)
    app.add_middleware(SecurityHeaders, frame_sources=web.demo.chat_url if web.demo else "")
    return app


class SecurityHeaders:
    """Headers on every answer: no caching of client data, no framing by other sites, no
    referrer (sign-in links carry their token in the path), and only our own scripts."""

    def __init__(self, app: ASGIApp, frame_sources: str = "") -> None:
        self.app = app
        frames = f" frame-src 'self' {frame_sources};" if frame_sources else ""
        self.headers = [
            (b"cache-control", b"no-store"),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy",
             ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
              f" media-src 'self';{frames} frame-ancestors 'self'; form-action 'self'").encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.headers
            await send(message)

        await self.app(scope, receive, with_headers)

