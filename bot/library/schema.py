"""Schemas for prompts and programs: what a therapist may write in prompts/, checked strictly.

A prompt is one thing the bot can send; a program is a list of steps, each naming a prompt
(or a pool of prompts drawn without repeats) and when to send it in the client's local time.
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,62}$"
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
MAX_TEXT = 3500  # leaves room under Telegram's 4096 for a reminder line or a step marker
MAX_BUTTON = 40  # a button label longer than this wraps badly on a phone


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptKind(StrEnum):
    INTEGRATION = "integration"  # days and weeks after a medicine session
    PREPARATION = "preparation"  # before a medicine session: intention, safety, parts
    CHECKIN = "checkin"  # nervous-system state right now
    ATTACHMENT = "attachment"  # reflections on anxious, avoidant, disorganized patterns
    PARTS = "parts"  # parts-work reflections
    REPAIR = "repair"  # couples repair-conversation steps
    REFLECTION = "reflection"  # anything else a practice writes


class ResponseType(StrEnum):
    TEXT = "text"
    VOICE_OR_TEXT = "voice_or_text"
    SCALE = "scale"  # a number on buttons, e.g. 0-10
    CHOICE = "choice"  # one of a few labelled buttons
    CHECKIN = "checkin"  # state buttons, then intensity 0-10, then optional words
    MULTI_STEP = "multi_step"  # a short sequence of questions, one after another


class Scale(Strict):
    min: int = 0
    max: int = 10
    low_label: str | None = None
    high_label: str | None = None

    @model_validator(mode="after")
    def _range(self) -> Scale:
        if not 0 <= self.min < self.max <= self.min + 10:
            raise ValueError("a scale needs min < max and at most 11 points (buttons on a phone)")
        return self


class Question(Strict):
    """One step of a multi-step prompt."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    response: Literal[ResponseType.TEXT, ResponseType.VOICE_OR_TEXT, ResponseType.SCALE,
                      ResponseType.CHOICE] = ResponseType.TEXT
    scale: Scale | None = None
    choices: tuple[Annotated[str, Field(min_length=1, max_length=MAX_BUTTON)], ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> Question:
        _check_response_shape(self.response, self.scale, self.choices)
        return self


class Prompt(Strict):
    key: Key
    kind: PromptKind
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    response: ResponseType
    tags: tuple[str, ...] = ()
    scale: Scale | None = None
    choices: tuple[Annotated[str, Field(min_length=1, max_length=MAX_BUTTON)], ...] = ()
    steps: tuple[Question, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> Prompt:
        _check_response_shape(self.response, self.scale, self.choices)
        if self.response is ResponseType.MULTI_STEP:
            if not 2 <= len(self.steps) <= 10:
                raise ValueError("a multi_step prompt needs 2 to 10 steps")
            if len(self.text) + len(self.steps[0].text) > MAX_TEXT:
                raise ValueError(f"the text and the first step together exceed {MAX_TEXT} "
                                 "characters, which is more than one Telegram message holds")
        elif self.steps:
            raise ValueError("only multi_step prompts have steps")
        return self


def _check_response_shape(
    response: ResponseType, scale: Scale | None, choices: tuple[str, ...]
) -> None:
    if response is ResponseType.CHOICE and not 2 <= len(choices) <= 6:
        raise ValueError("a choice prompt needs 2 to 6 choices")
    if response is not ResponseType.CHOICE and choices:
        raise ValueError("only choice prompts have choices")
    if response is not ResponseType.SCALE and scale is not None:
        raise ValueError("only scale prompts have a scale")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"expected a 24-hour time like 09:30, got {value!r}")
    return time(int(match[1]), int(match[2]))


class Step(Strict):
    """When to send which prompt. Exactly one way of timing it:

    - ``anchor_day`` + ``at``: day N relative to the anchor (the medicine session), local time;
      negative days are before it (preparation).
    - ``anchor_hours``: exactly N hours from the anchor (e.g. -24).
    - ``daily``: every day at a local time.
    - ``weekly`` + ``at``: on some weekdays at a local time.
    - ``window`` (+ optional ``days``): once a day at a random time inside a local window.
    """

    prompt: Key | None = None
    pool: tuple[Key, ...] = ()
    # Couple programs only: two prompts that go together, one to each partner, swapping who gets
    # which each time, so neither partner is always asked the same side.
    complementary: tuple[Key, Key] | None = None
    anchor_day: int | None = Field(default=None, ge=-60, le=365)
    anchor_hours: int | None = Field(default=None, ge=-24 * 60, le=24 * 365)
    at: str | None = None
    daily: str | None = None
    weekly: tuple[Weekday, ...] = ()
    window: tuple[str, str] | None = None
    days: tuple[Weekday, ...] = ()

    @field_validator("at", "daily")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hhmm(value)
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            start, end = parse_hhmm(value[0]), parse_hhmm(value[1])
            if start >= end:
                raise ValueError("a window must start before it ends, within one day")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Step:
        named = [self.prompt is not None, bool(self.pool), self.complementary is not None]
        if sum(named) != 1:
            raise ValueError("a step names one prompt, a pool of prompts, or (couples) a "
                             "complementary pair")
        timings = {
            "anchor_day": self.anchor_day is not None,
            "anchor_hours": self.anchor_hours is not None,
            "daily": self.daily is not None,
            "weekly": bool(self.weekly),
            "window": self.window is not None,
        }
        chosen = [name for name, used in timings.items() if used]
        if len(chosen) != 1:
            raise ValueError(f"a step needs exactly one timing, got {chosen or 'none'}")
        needs_at = chosen[0] in ("anchor_day", "weekly")
        if needs_at != (self.at is not None):
            raise ValueError("'at' goes with anchor_day and weekly, and only with them")
        if self.days and chosen[0] != "window":
            raise ValueError("'days' goes with window only")
        return self

    @property
    def anchored(self) -> bool:
        return self.anchor_day is not None or self.anchor_hours is not None

    @property
    def prompt_keys(self) -> tuple[str, ...]:
        if self.complementary is not None:
            return self.complementary
        return (self.prompt,) if self.prompt else self.pool


class Audience(StrEnum):
    CLIENT = "client"
    COUPLE = "couple"


class Program(Strict):
    key: Key
    title: str = Field(min_length=1, max_length=120)
    description: str = ""
    audience: Audience = Audience.CLIENT
    anchor: Literal["medicine_session"] | None = None
    duration_days: int | None = Field(default=None, ge=1, le=366)
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _anchor(self) -> Program:
        anchored = any(step.anchored for step in self.steps)
        if anchored and self.anchor is None:
            raise ValueError("steps timed from the anchor need 'anchor: medicine_session'")
        if self.audience is Audience.CLIENT and any(s.complementary for s in self.steps):
            raise ValueError("'complementary' steps are for couple programs (audience: couple)")
        return self
