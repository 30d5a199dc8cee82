"""Signing in by a one-time link, signing out, and signing out everywhere.

Opening a link shows a button; only pressing it uses the link up. Link previews (Telegram's,
a mail scanner's) fetch the page without pressing, so they cannot spend a therapist's link.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot.services import audit, signin
from bot.services.audit import Actor
from bot.services.signin import LinkState
from bot.web.app import context, signed_in
from bot.web.rendering import page
from bot.web.security import SignedIn, end_session, start_session

router = APIRouter(include_in_schema=False)
REFUSED = {
    LinkState.UNKNOWN: "This sign-in link is not valid.",
    LinkState.EXPIRED: "This sign-in link has expired.",
    LinkState.USED: "This sign-in link has already been used.",
}


def local_path(value: str) -> str:
    """A path on this site to go on to after signing in, or nothing (never another site)."""
    return value if value.startswith("/") and not value.startswith(("//", "/\\")) else ""


@router.get("/signin")
async def signin_page(request: Request, next: str = "") -> Response:
    return page(request, "signin.html", None, next=local_path(next))


@router.get("/login/{token}")
async def link_page(request: Request, token: str) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        check = await signin.check_link(session, token, web.clock)
    if check.state is not LinkState.VALID:
        return page(request, "signin.html", None, status_code=410, refused=REFUSED[check.state])
    assert check.therapist is not None
    return page(request, "login.html", None, token=token, name=check.therapist.display_name)


@router.post("/login/{token}")
async def use_link(request: Request, token: str) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        check = await signin.redeem_link(session, token, web.clock)
        if check.state is LinkState.VALID:
            assert check.therapist is not None
            await audit.record(session, Actor(check.therapist.id, "web"), "signed_in", web.clock)
    if check.state is not LinkState.VALID or check.therapist is None:
        return page(request, "signin.html", None, status_code=410, refused=REFUSED[check.state])
    start_session(request, check.therapist.id, check.therapist.session_epoch,
                  web.clock.now().timestamp())
    return RedirectResponse("/clients", status_code=303)


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    end_session(request)
    return page(request, "signin.html", None, signed_out=True)


@router.post("/signout/everywhere")
async def sign_out_everywhere(request: Request,
                              user: Annotated[SignedIn, Depends(signed_in)]) -> Response:
    web = context(request)
    async with web.db.transaction() as session:
        await signin.sign_out_everywhere(session, user.therapist_id)
        await audit.record(session, user.actor, "signed_out_everywhere", web.clock)
    end_session(request)
    return page(request, "signin.html", None, signed_out=True)
