"""The demo page: the client's chat beside the therapist's dashboard, and both partners' chats
beside the couple's view, for someone trying Interlude out. It exists only in the demo (`make
run` without a Telegram token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.db.models import Client
from bot.services import audit, couples, practice
from bot.services.audit import Actor
from bot.web.app import DemoInfo, context
from bot.web.rendering import page
from bot.web.routes.signin import local_path
from bot.web.security import start_session

router = APIRouter(include_in_schema=False)


def _demo(request: Request) -> DemoInfo:
    demo = context(request).demo
    if demo is None:
        raise practice.NotFound("the demo page exists only in the demo")
    return demo


@dataclass(frozen=True)
class DemoPartner:
    name: str
    telegram_user_id: int


async def _demo_couple(request: Request, therapist_id: int) -> tuple[int, list[DemoPartner]] | None:
    """The demo therapist's newest active couple whose partners both have a chat to play."""
    web = context(request)
    async with web.db.transaction() as session:
        for row in await couples.couples(session, therapist_id):
            if row["state"] != "active":
                continue
            partners = []
            for partner in row["partners"]:
                client = await session.get(Client, partner["client_id"])
                if client is not None and client.telegram_user_id is not None:
                    partners.append(DemoPartner(client.display_name, client.telegram_user_id))
            if len(partners) == 2:
                return row["id"], partners
    return None


@router.get("/demo")
async def demo_page(request: Request) -> Response:
    demo = _demo(request)
    couple = await _demo_couple(request, demo.therapist_id)
    return page(request, "demo.html", None, chat_url=demo.chat_url, invites=demo.invites,
                couple_id=couple[0] if couple else None, partners=couple[1] if couple else [])


@router.post("/demo/signin")
async def demo_sign_in(request: Request, next: Annotated[str, Form()] = "") -> Response:
    """In the demo only: sign in as the demo therapist without a link (then go on to `next`)."""
    demo = _demo(request)
    web = context(request)
    async with web.db.transaction() as session:
        therapist = await practice.therapist(session, demo.therapist_id)
        await audit.record(session, Actor(therapist.id, "web"), "signed_in", web.clock,
                           detail="demo")
        epoch = therapist.session_epoch
    start_session(request, demo.therapist_id, epoch, web.clock.now().timestamp())
    return RedirectResponse(local_path(next) or "/clients", status_code=303)
