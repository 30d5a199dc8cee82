"""Schemas for prompts and programs: what a therapist may write in prompts/, checked strictly.

A prompt is one thing the bot can send; a program is a list of steps, each naming a prompt
(or a pool of prompts drawn without repeats) and when to send it in the client's local time.
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from itertools import pairwise
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
    MEASURE = "measure"  # a standard questionnaire the practice measures with (PHQ-9, GAD-7)


class ResponseType(StrEnum):
    TEXT = "text"
    VOICE_OR_TEXT = "voice_or_text"
    SCALE = "scale"  # a number on buttons, e.g. 0-10
    CHOICE = "choice"  # one of a few labelled buttons
    CHECKIN = "checkin"  # state buttons, then intensity 0-10, then optional words
    MULTI_STEP = "multi_step"  # a short sequence of questions, one after another
    QUESTIONNAIRE = "questionnaire"  # a scored instrument: items one at a time, answer buttons


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


class AnswerOption(Strict):
    """One answer an item may take, and the points it scores."""

    value: int = Field(ge=0, le=100)
    label: str = Field(min_length=1, max_length=MAX_BUTTON)
    code: str | None = None  # its LOINC answer code (LA...), for FHIR export


class Item(Strict):
    text: str = Field(min_length=1, max_length=500)
    code: str | None = None  # the item's LOINC code, for FHIR export


class Band(Strict):
    """A span of totals with a name: minimal, mild, moderate..."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=40)


class Scoring(Strict):
    """How the total is worked out: the sum of the item values, read against contiguous bands."""

    method: Literal["sum"] = "sum"
    total_code: str | None = None  # LOINC code of the total score (PHQ-9: 44261-6)
    bands: tuple[Band, ...] = Field(min_length=1)
    # The total at or under which a client is counted as in remission (PHQ-9, GAD-7: under 5).
    remission_below: int | None = Field(default=None, ge=1)


class ItemAlert(Strict):
    """An answer that goes to the therapist at once, with the crisis resources to the client."""

    item: int = Field(ge=1)  # counted from 1, as printed on the form
    at_least: int = Field(ge=1)  # the lowest answer value that raises it


class Questionnaire(Strict):
    """A scored instrument: a stem, items asked one at a time, the same answers for each item."""

    title: str = Field(min_length=1, max_length=20)  # short, shown with the progress: "PHQ-9"
    name: str = Field(min_length=1, max_length=120)
    attribution: str = Field(min_length=1)
    code: str | None = None  # LOINC code of the whole panel (PHQ-9: 44249-1)
    stem: str = Field(min_length=1, max_length=500)
    options: tuple[AnswerOption, ...] = Field(min_length=2, max_length=6)
    items: tuple[Item, ...] = Field(min_length=1, max_length=40)
    scoring: Scoring
    alerts: tuple[ItemAlert, ...] = ()

    @property
    def lowest(self) -> int:
        return len(self.items) * min(o.value for o in self.options)

    @property
    def highest(self) -> int:
        return len(self.items) * max(o.value for o in self.options)

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        values = [o.value for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError("two answer options have the same value")
        if values != sorted(values):
            raise ValueError("answer options go from the lowest value to the highest")
        if len({o.label for o in self.options}) != len(self.options):
            raise ValueError("two answer options have the same label")
        bands = self.scoring.bands
        if bands[0].min != self.lowest:
            raise ValueError(f"the first band starts at {bands[0].min}, but the lowest possible "
                             f"total is {self.lowest}")
        for band in bands:
            if band.min > band.max:
                raise ValueError(f"band {band.label!r} ends before it starts")
        for before, after in pairwise(bands):
            if after.min != before.max + 1:
                raise ValueError(f"bands {before.label!r} and {after.label!r} leave a gap or "
                                 "overlap: each band starts one after the previous one ends")
        if bands[-1].max != self.highest:
            raise ValueError(f"the last band ends at {bands[-1].max}, but the highest possible "
                             f"total is {self.highest}")
        if len({b.label for b in bands}) != len(bands):
            raise ValueError("two bands have the same label")
        remission = self.scoring.remission_below
        if remission is not None and not self.lowest < remission <= self.highest:
            raise ValueError("remission_below must lie inside the range of totals")
        for alert in self.alerts:
            if alert.item > len(self.items):
                raise ValueError(f"an alert names item {alert.item}, but there are "
                                 f"{len(self.items)} items")
            if alert.at_least > max(values):
                raise ValueError(f"an alert on item {alert.item} needs a value of at least "
                                 f"{alert.at_least}, which no answer has")
        return self

    def band(self, total: int) -> str:
        return next(b.label for b in self.scoring.bands if b.min <= total <= b.max)


class Prompt(Strict):
    key: Key
    kind: PromptKind
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    response: ResponseType
    tags: tuple[str, ...] = ()
    scale: Scale | None = None
    choices: tuple[Annotated[str, Field(min_length=1, max_length=MAX_BUTTON)], ...] = ()
    steps: tuple[Question, ...] = ()
    questionnaire: Questionnaire | None = None

    @model_validator(mode="after")
    def _shape(self) -> Prompt:
        _check_response_shape(self.response, self.scale, self.choices)
        if (self.response is ResponseType.QUESTIONNAIRE) != (self.questionnaire is not None):
            raise ValueError("a questionnaire prompt, and only one, has a 'questionnaire'")
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
    - ``start_hours``: N hours after the program starts (0: at enrolment, a baseline). Once per
      enrolment: a program moved to a new medicine session continues, so it does not fire again.
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
    start_hours: int | None = Field(default=None, ge=0, le=24 * 365)
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
            "start_hours": self.start_hours is not None,
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
    def once(self) -> bool:
        """Fires once per enrolment (timed from the anchor or the start), not on a calendar."""
        return self.anchored or self.start_hours is not None

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
    # False: the program may start before any session is booked; its anchored steps wait for
    # one (recording a medicine session moves the program to it).
    anchor_required: bool = True
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
