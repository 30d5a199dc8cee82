"""Questionnaires (PHQ-9, GAD-7, or one a practice adds): asked item by item, scored, and read
over time against the medicine sessions.

Inbound path: each answer button is stored at once, with the place in the questionnaire, so it
resumes where it was after an interruption or a restart; an item marked for alerts raises the
crisis alert as soon as it is answered. Review path: the results, change from baseline,
response and remission, for the dashboard, /client, the CSV and the FHIR export.

Answers, totals and bands are sealed (EncryptedJSON) and worked out here in Python: a client
has a few dozen questionnaires, so nothing needs them in SQL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import (
    OPEN_STATUSES,
    Client,
    Delivery,
    DeliveryStatus,
    QuestionnaireResponse,
    QuestionnaireStatus,
    Therapist,
)
from bot.library.schema import Questionnaire, ResponseType
from bot.services import safety

QUESTIONNAIRE_ITEM = safety.QUESTIONNAIRE_ITEM
RESPONSE_DROP = 0.5  # a response: the total at or under half the baseline


def is_questionnaire(prompt: dict[str, Any]) -> bool:
    return prompt.get("response") == ResponseType.QUESTIONNAIRE.value


def instrument(prompt: dict[str, Any]) -> Questionnaire:
    """The questionnaire as it was sent (the delivery's own copy)."""
    return Questionnaire.model_validate(prompt["questionnaire"])


def score(questionnaire: Questionnaire, values: Sequence[int | None]) -> tuple[int, str]:
    """(total, band) of a fully answered questionnaire; ValueError for a partial or foreign one."""
    if len(values) != len(questionnaire.items) or any(v is None for v in values):
        raise ValueError("only a questionnaire with every item answered has a score")
    allowed = {option.value for option in questionnaire.options}
    if any(v not in allowed for v in values):
        raise ValueError("an answer is not one of the questionnaire's options")
    total = sum(v for v in values if v is not None)
    return total, questionnaire.band(total)


@dataclass(frozen=True)
class Asked:
    """What a press led to, for the handler to show.

    result: "item" (show `item`), "done" (every item answered), "closed" (expired or stopped),
    "finished" (answered before), "foreign" (not this person's, or data we never send).
    """

    result: str
    delivery_id: int | None = None
    prompt: dict[str, Any] | None = None
    item: int = 0
    values: tuple[int | None, ...] = ()
    alert: safety.RaisedAlert | None = None
    alert_item: int | None = None  # the item (from 1) that raised the alert
    therapist_name: str = ""


async def _open(session: AsyncSession, client: Client, clock: Clock,
                delivery_id: int) -> tuple[Delivery, QuestionnaireResponse] | Asked:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id or not is_questionnaire(delivery.prompt):
        return Asked("foreign")
    response = await session.scalar(select(QuestionnaireResponse).where(
        QuestionnaireResponse.delivery_id == delivery.id))
    if response is not None and response.status is QuestionnaireStatus.COMPLETE:
        return Asked("finished", delivery.id, delivery.prompt)
    if delivery.status not in OPEN_STATUSES or delivery.closed_at is not None \
            or delivery.expires_at <= clock.now() \
            or (response is not None and response.status is QuestionnaireStatus.INCOMPLETE):
        return Asked("closed", delivery.id, delivery.prompt)
    if response is None:
        now = clock.now()
        count = len(delivery.prompt["questionnaire"]["items"])
        response = QuestionnaireResponse(
            client_id=client.id, delivery_id=delivery.id, instrument=delivery.prompt_key,
            status=QuestionnaireStatus.IN_PROGRESS, item=0, answers={"values": [None] * count},
            started_at=now, updated_at=now)
        session.add(response)
    return delivery, response


def _values(response: QuestionnaireResponse) -> list[int | None]:
    return list(response.answers.get("values") or [])


async def answer(session: AsyncSession, client: Client, clock: Clock, *, delivery_id: int,
                 item: int, value: int) -> Asked:
    """One item answered (or answered again): the next unanswered item, or the end."""
    opened = await _open(session, client, clock, delivery_id)
    if isinstance(opened, Asked):
        return opened
    delivery, response = opened
    questionnaire = instrument(delivery.prompt)
    values = _values(response)
    # An item may be answered once every item before it has been: no skipping ahead.
    reachable = next((n for n, v in enumerate(values) if v is None), len(values))
    if not 0 <= item <= reachable or item >= len(values) \
            or value not in {option.value for option in questionnaire.options}:
        return Asked("foreign")
    now = clock.now()
    values[item] = value
    raised = None
    for rule in questionnaire.alerts:
        if rule.item - 1 == item and value >= rule.at_least and response.alert_id is None:
            raised = await safety.raise_alert(session, client, QUESTIONNAIRE_ITEM, None, clock)
            response.alert_id = raised.id
    following = next((n for n, v in enumerate(values) if v is None), None)
    answers: dict[str, Any] = {"values": values}
    if following is None:
        answers["total"], answers["band"] = score(questionnaire, values)
        response.status = QuestionnaireStatus.COMPLETE
        response.completed_at = response.closed_at = now
    response.answers = answers  # a new dict, so the ORM writes it
    response.item = following if following is not None else len(values)
    response.updated_at = now
    if delivery.status is DeliveryStatus.SENT:
        delivery.status = DeliveryStatus.ANSWERED
    delivery.answered_at = delivery.answered_at or now
    delivery.reminder_at = None
    delivery.progress = sum(v is not None for v in values)
    therapist = await session.get(Therapist, client.therapist_id) if raised else None
    await session.flush()
    return Asked("done" if following is None else "item", delivery.id, delivery.prompt,
                 response.item, tuple(values), raised,
                 item + 1 if raised else None, therapist.display_name if therapist else "")


async def back(session: AsyncSession, client: Client, clock: Clock, *, delivery_id: int,
               item: int) -> Asked:
    """Back one item from `item`, showing the answer given there."""
    opened = await _open(session, client, clock, delivery_id)
    if isinstance(opened, Asked):
        return opened
    delivery, response = opened
    values = _values(response)
    if not 1 <= item < len(values):
        return Asked("foreign")
    response.item = item - 1
    response.updated_at = clock.now()
    await session.flush()
    return Asked("item", delivery.id, delivery.prompt, item - 1, tuple(values))


async def current(session: AsyncSession, client: Client, clock: Clock,
                  delivery_id: int) -> Asked:
    """Where an open questionnaire stands, to show it again (after the client wrote instead)."""
    opened = await _open(session, client, clock, delivery_id)
    if isinstance(opened, Asked):
        return opened
    delivery, response = opened
    await session.flush()
    return Asked("item", delivery.id, delivery.prompt, response.item, tuple(_values(response)))


async def close_expired(session: AsyncSession, clock: Clock) -> int:
    """Questionnaires left half-done when their prompt closed: kept, marked incomplete."""
    now = clock.now()
    rows = list(await session.scalars(
        select(QuestionnaireResponse).join(Delivery, Delivery.id == QuestionnaireResponse.delivery_id)
        .where(QuestionnaireResponse.status == QuestionnaireStatus.IN_PROGRESS,
               or_(Delivery.closed_at.is_not(None), Delivery.expires_at <= now))))
    for response in rows:
        response.status = QuestionnaireStatus.INCOMPLETE
        response.closed_at = now
    return len(rows)


# Results over time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One questionnaire a client answered (or began), as the therapist reads it."""

    id: int
    delivery_id: int
    key: str
    questionnaire: Questionnaire
    status: str
    started_at: datetime
    completed_at: datetime | None
    values: tuple[int | None, ...]
    total: int | None
    band: str | None

    @property
    def title(self) -> str:
        return self.questionnaire.title

    @property
    def at(self) -> datetime:
        return self.completed_at or self.started_at

    @property
    def complete(self) -> bool:
        return self.status == QuestionnaireStatus.COMPLETE.value

    def label(self, item: int) -> str | None:
        """The answer given to item `item` (from 0), as its option's words."""
        value = self.values[item] if item < len(self.values) else None
        return next((o.label for o in self.questionnaire.options if o.value == value), None)


async def results(session: AsyncSession, client_id: int) -> list[Result]:
    """Every questionnaire this client began, oldest first."""
    rows = (await session.execute(
        select(QuestionnaireResponse, Delivery.prompt)
        .join(Delivery, Delivery.id == QuestionnaireResponse.delivery_id)
        .where(QuestionnaireResponse.client_id == client_id)
        .order_by(QuestionnaireResponse.started_at, QuestionnaireResponse.id))).all()
    found = []
    for response, prompt in rows:
        answers = response.answers
        found.append(Result(
            response.id, response.delivery_id, response.instrument, instrument(prompt),
            response.status.value, response.started_at, response.completed_at,
            tuple(answers.get("values") or ()), answers.get("total"), answers.get("band")))
    return found


@dataclass(frozen=True)
class Trend:
    """One questionnaire's scores over time, with the change a prescriber asks about."""

    key: str
    questionnaire: Questionnaire
    results: list[Result] = field(default_factory=list)  # complete ones, oldest first
    incomplete: int = 0

    @property
    def title(self) -> str:
        return self.questionnaire.title

    @property
    def baseline(self) -> Result | None:
        return self.results[0] if self.results else None

    @property
    def latest(self) -> Result | None:
        return self.results[-1] if self.results else None

    @property
    def change(self) -> int | None:
        """Latest total minus the baseline's (negative is better); None before a follow-up."""
        if len(self.results) < 2:
            return None
        assert self.results[-1].total is not None and self.results[0].total is not None
        return self.results[-1].total - self.results[0].total

    @property
    def change_percent(self) -> int | None:
        base = self.baseline.total if self.baseline else None
        if self.change is None or not base:
            return None
        return round(100 * self.change / base)

    @property
    def response(self) -> bool | None:
        """A drop of at least half from the baseline; None before a follow-up or from 0."""
        if self.change is None or not self.baseline or not self.baseline.total:
            return None
        assert self.latest is not None and self.latest.total is not None
        return self.latest.total <= self.baseline.total * RESPONSE_DROP

    @property
    def remission(self) -> bool | None:
        """The latest total under the instrument's remission cut-off (PHQ-9, GAD-7: under 5)."""
        cutoff = self.questionnaire.scoring.remission_below
        if cutoff is None or self.latest is None or self.latest.total is None:
            return None
        return self.latest.total < cutoff

    def change_of(self, result: Result) -> int | None:
        if self.baseline is None or result.total is None or self.baseline.total is None:
            return None
        return result.total - self.baseline.total

    def as_json(self) -> dict[str, Any]:
        def one(result: Result | None) -> dict[str, Any] | None:
            if result is None:
                return None
            return {"at": result.at.isoformat(), "total": result.total, "band": result.band}
        return {"questionnaire": self.key, "title": self.title,
                "range": [self.questionnaire.lowest, self.questionnaire.highest],
                "baseline": one(self.baseline), "latest": one(self.latest),
                "change": self.change, "change_percent": self.change_percent,
                "response": self.response, "remission": self.remission,
                "incomplete": self.incomplete,
                "scores": [one(r) for r in self.results]}


def trends(found: list[Result]) -> list[Trend]:
    """Per questionnaire, in the order each was first begun."""
    keys = list(dict.fromkeys(r.key for r in found))
    out = []
    for key in keys:
        mine = [r for r in found if r.key == key]
        complete = [r for r in mine if r.complete]
        out.append(Trend(key, (complete or mine)[-1].questionnaire, complete,
                         sum(r.status == QuestionnaireStatus.INCOMPLETE.value for r in mine)))
    return out


def result_json(result: Result, trend: Trend | None = None) -> dict[str, Any]:
    questionnaire = result.questionnaire
    return {
        "id": result.id, "questionnaire": result.key, "title": result.title,
        "status": result.status, "started_at": result.started_at.isoformat(),
        "completed_at": result.completed_at.isoformat() if result.completed_at else None,
        "total": result.total, "band": result.band,
        "change_from_baseline": trend.change_of(result) if trend else None,
        "answers": [{"item": n + 1, "text": item.text,
                     "value": result.values[n] if n < len(result.values) else None,
                     "answer": result.label(n)} for n, item in enumerate(questionnaire.items)],
    }


CSV_COLUMNS = ("client_id", "questionnaire", "status", "started_at", "completed_at", "total",
               "band", "change_from_baseline", "response", "remission")


def export_csv(client_id: int, found: list[Result]) -> str:
    """One row per questionnaire begun, oldest first: the score, its change from the baseline,
    and each item's value (item_1, item_2...). Response and remission are read at that row."""
    width = max((len(r.values) for r in found), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, *(f"item_{n + 1}" for n in range(width))])
    by_key: dict[str, list[Result]] = {}
    for result in found:
        earlier = by_key.setdefault(result.key, [])
        trend = Trend(result.key, result.questionnaire, [r for r in earlier if r.complete]
                      + ([result] if result.complete else []))
        latest = trend.latest is result
        writer.writerow([
            client_id, result.title, result.status, result.started_at.isoformat(),
            result.completed_at.isoformat() if result.completed_at else "",
            "" if result.total is None else result.total, result.band or "",
            _blank(trend.change_of(result) if result.complete else None),
            _yes_no(trend.response if latest else None),
            _yes_no(trend.remission if latest else None),
            *(_blank(v) for v in result.values), *([""] * (width - len(result.values)))])
        earlier.append(result)
    return buffer.getvalue()


def _blank(value: object) -> object:
    return "" if value is None else value


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")
