"""The demo page: the client's chat beside the therapist's dashboard, for someone trying
Interlude out. It exists only in the demo (`make run` without a Telegram token)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bot.services import audit, practice
from bot.services.audit import Actor
from bot.web.app import DemoInfo, context
from bot.web.rendering import page
from bot.web.security import start_session

router = APIRouter(include_in_schema=False)


def _demo(request: Request) -> DemoInfo:
    demo = context(request).demo
    if demo is None:
        raise practice.NotFound("the demo page exists only in the demo")
    return demo


@router.get("/demo")
async def demo_page(request: Request) -> Response:
    demo = _demo(request)
    # A couple's view (both partners' chats beside one dashboard) will sit beside this one.
    return page(request, "demo.html", None, chat_url=demo.chat_url, invites=demo.invites)


@router.post("/demo/signin")
async def demo_sign_in(request: Request) -> Response:
    """In the demo only: sign in as the demo therapist without a link."""
    demo = _demo(request)
    web = context(request)
    async with web.db.transaction() as session:
        therapist = await practice.therapist(session, demo.therapist_id)
        await audit.record(session, Actor(therapist.id, "web"), "signed_in", web.clock,
                           detail="demo")
        epoch = therapist.session_epoch
    start_session(request, demo.therapist_id, epoch, web.clock.now().timestamp())
    return RedirectResponse("/clients", status_code=303)
