"""The demo page: the chat view beside the dashboard, for someone trying Interlude out."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
