"""The JSON API (`/api/...`): the dashboard's data for a practice's own tools."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from bot.web.app import signed_in
from bot.web.security import SignedIn, csrf_token

router = APIRouter(prefix="/api", tags=["api"])
User = Annotated[SignedIn, Depends(signed_in)]


class SessionInfo(BaseModel):
    therapist_id: int
    name: str
    csrf_token: str


@router.get("/session", response_model=SessionInfo, summary="Who is signed in, and the CSRF token")
async def session_info(request: Request, user: User) -> SessionInfo:
    """Send `csrf_token` as the X-CSRF-Token header with every POST, PUT or DELETE."""
    return SessionInfo(therapist_id=user.therapist_id, name=user.name,
                       csrf_token=csrf_token(request))
