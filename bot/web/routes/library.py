"""The prompt library and programs: browse them, and see a prompt as the client will in Telegram."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot import messages
from bot.handlers.keyboards import prompt_message, questionnaire_message
from bot.library.schema import PromptKind
from bot.messages import render
from bot.services.practice import NotFound
from bot.web.app import context, signed_in
from bot.web.rendering import page
from bot.web.security import SignedIn

router = APIRouter(include_in_schema=False)
User = Annotated[SignedIn, Depends(signed_in)]


def telegram_preview(prompt: dict[str, Any]) -> dict[str, Any]:
    """The first message exactly as the bot renders it, with its buttons' labels in rows."""
    rendered = prompt_message(0, prompt, None)
    rows = [[button.text for button in row] for row in rendered.keyboard.inline_keyboard] \
        if rendered.keyboard else []
    follow = []
    if prompt.get("response") == "checkin":
        follow = [render(messages.CHECKIN_INTENSITY, None),
                  render(messages.CHECKIN_WORDS, None)]
    elif prompt.get("response") == "multi_step":
        follow = [f"{render(messages.STEP_MARKER, None, number=n + 1, total=len(prompt['steps']))} "
                  f"{step['text']}" for n, step in enumerate(prompt["steps"][1:], start=1)]
    elif prompt.get("response") == "questionnaire":
        # Every item in turn, as the message shows it; then the instrument's attribution.
        spec = prompt["questionnaire"]
        follow = [questionnaire_message(0, prompt, n, (), None).text
                  for n in range(1, len(spec["items"]))] + [spec["attribution"]]
    return {"text": rendered.text, "rows": rows, "follow": follow}


@router.get("/library")
async def library_page(request: Request, user: User, kind: str = "") -> Response:
    web = context(request)
    prompts = [p for p in web.library.prompts.values() if not kind or p.kind.value == kind]
    return page(request, "library.html", user, programs=web.library.programs.values(),
                prompts=prompts, kinds=[k.value for k in PromptKind], kind=kind)


@router.get("/library/programs/{key}")
async def program_page(request: Request, user: User, key: str) -> Response:
    web = context(request)
    program = web.library.programs.get(key)
    if program is None:
        raise NotFound(key)
    return page(request, "program.html", user, program=program, prompts=web.library.prompts)


@router.get("/library/prompts/{key}")
async def prompt_page(request: Request, user: User, key: str) -> Response:
    web = context(request)
    prompt = web.library.prompts.get(key)
    if prompt is None:
        raise NotFound(key)
    used_in = [p for p in web.library.programs.values()
               if any(key in step.prompt_keys for step in p.steps)]
    return page(request, "prompt.html", user, prompt=prompt, used_in=used_in,
                preview=telegram_preview(prompt.model_dump(mode="json")))
