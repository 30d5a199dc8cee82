"""A client's record for their therapist: the timeline of prompts and answers, check-in trends,
and exports for the clinical record (review path).

Every prompt is shown with the words it was sent with (the delivery's own copy), so the record
stays true after the library changes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, Delivery, Reply, ReplyKind, VoiceNote
from bot.services import questionnaires


@dataclass(frozen=True)
class Answer:
    id: int
    kind: str
    question: int
    text: str | None
    value: str | None
    voice_seconds: int | None
    has_audio: bool
    at: datetime
    edited_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "question": self.question, "text": self.text,
                "value": self.value, "voice_seconds": self.voice_seconds,
                "has_audio": self.has_audio, "at": self.at.isoformat(),
                "edited_at": self.edited_at.isoformat() if self.edited_at else None}


@dataclass(frozen=True)
class TimelineEntry:
    """One prompt as sent and what came back (or a message sent without a prompt)."""

    delivery_id: int | None
    prompt_key: str | None
    prompt_text: str | None
    questions: list[str]
    sent_at: datetime | None
    status: str | None
    checkin_state: str | None
    checkin_intensity: int | None
    answers: list[Answer] = field(default_factory=list)
    questionnaire: str | None = None  # a questionnaire's score, or how far it got

    @property
    def at(self) -> datetime:
        return self.sent_at or self.answers[0].at

    def as_json(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "prompt_key": self.prompt_key,
                "prompt_text": self.prompt_text, "questions": self.questions,
                "sent_at": self.sent_at.isoformat() if self.sent_at else None,
                "status": self.status,
                "checkin": None if self.checkin_state is None and self.checkin_intensity is None
                else {"state": self.checkin_state, "intensity": self.checkin_intensity},
                "questionnaire": self.questionnaire,
                "answers": [a.as_json() for a in self.answers]}


async def timeline(session: AsyncSession, client_id: int, *, start: datetime | None = None,
                   end: datetime | None = None) -> list[TimelineEntry]:
    """Prompts sent in [start, end) with their answers, newest first."""
    query = select(Delivery).where(Delivery.client_id == client_id, Delivery.sent_at.is_not(None))
    if start is not None:
        query = query.where(Delivery.sent_at >= start)
    if end is not None:
        query = query.where(Delivery.sent_at < end)
    deliveries = list(await session.scalars(query))
    ids = [d.id for d in deliveries]
    checkins = {c.delivery_id: c for c in await session.scalars(
        select(CheckIn).where(CheckIn.client_id == client_id))}
    reply_query = select(Reply).where(Reply.client_id == client_id).order_by(Reply.created_at,
                                                                             Reply.id)
    replies = list(await session.scalars(reply_query))
    audio = set(await session.scalars(select(VoiceNote.reply_id).where(
        VoiceNote.reply_id.in_([r.id for r in replies if r.kind is ReplyKind.VOICE]))))
    grouped: dict[int | None, list[Answer]] = {}
    for reply in replies:
        if reply.delivery_id is not None and reply.delivery_id not in ids:
            continue
        if reply.delivery_id is None and not _within(reply.created_at, start, end):
            continue
        grouped.setdefault(reply.delivery_id, []).append(Answer(
            reply.id, reply.kind.value, reply.question, reply.text, reply.value,
            reply.voice_duration, reply.id in audio, reply.created_at, reply.edited_at))
    measured = {r.delivery_id: r for r in await questionnaires.results(session, client_id)
                if r.delivery_id in ids}
    entries = []
    for delivery in deliveries:
        checkin = checkins.get(delivery.id)
        entries.append(TimelineEntry(
            delivery.id, delivery.prompt_key, delivery.prompt.get("text"),
            [step.get("text", "") for step in delivery.prompt.get("steps") or []],
            delivery.sent_at, delivery.status.value,
            checkin.state.value if checkin and checkin.state else None,
            checkin.intensity if checkin else None, grouped.get(delivery.id, []),
            _measured(measured.get(delivery.id))))
    entries += [TimelineEntry(None, None, None, [], None, None, None, None, [answer])
                for answer in grouped.get(None, [])]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


def _measured(result: questionnaires.Result | None) -> str | None:
    if result is None:
        return None
    if result.complete:
        return f"{result.title}: {result.total} ({result.band})"
    answered = sum(v is not None for v in result.values)
    state = "left half-done" if result.status == "incomplete" else "in progress"
    return f"{result.title}: {answered} of {len(result.values)} answered, {state}"


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


@dataclass(frozen=True)
class CheckInPoint:
    at: datetime
    state: str | None
    intensity: int | None


@dataclass(frozen=True)
class WeekRate:
    week_start: datetime
    sent: int
    answered: int

    @property
    def rate(self) -> float | None:
        return self.answered / self.sent if self.sent else None


@dataclass(frozen=True)
class Trends:
    checkins: list[CheckInPoint]
    weeks: list[WeekRate]
    sessions: list[datetime]
    start: datetime
    end: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(),
            "checkins": [{"at": c.at.isoformat(), "state": c.state, "intensity": c.intensity}
                         for c in self.checkins],
            "answer_rate_by_week": [{"week_start": w.week_start.date().isoformat(), "sent": w.sent,
                                     "answered": w.answered,
                                     "rate": round(w.rate, 3) if w.rate is not None else None}
                                    for w in self.weeks],
            "medicine_sessions": [s.isoformat() for s in self.sessions],
        }


async def trends(session: AsyncSession, client_id: int, start: datetime, end: datetime,
                 sessions: list[datetime]) -> Trends:
    """Check-ins, the weekly answer rate and medicine sessions in [start, end)."""
    points = [CheckInPoint(c.recorded_at, c.state.value if c.state else None, c.intensity)
              for c in await session.scalars(select(CheckIn).where(
                  CheckIn.client_id == client_id, CheckIn.recorded_at >= start,
                  CheckIn.recorded_at < end).order_by(CheckIn.recorded_at))]
    sent = list((await session.execute(select(Delivery.sent_at, Delivery.answered_at).where(
        Delivery.client_id == client_id, Delivery.sent_at >= start,
        Delivery.sent_at < end))).all())
    weeks: list[WeekRate] = []
    week = start
    while week < end:
        following = week + timedelta(days=7)
        inside = [answered for at, answered in sent if at is not None and week <= at < following]
        weeks.append(WeekRate(week, len(inside), sum(a is not None for a in inside)))
        week = following
    return Trends(points, weeks, [s for s in sessions if start <= s < end], start, end)


EXPORT_COLUMNS = ("sent_at", "prompt_key", "prompt_text", "question", "answer_kind", "answer",
                  "voice_seconds", "answered_at", "edited_at", "checkin_state",
                  "checkin_intensity")


def export_rows(entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    """One row per answer (a check-in without words is one row too), oldest first."""
    rows = []
    for entry in sorted(entries, key=lambda e: e.at):
        base = {"sent_at": entry.sent_at.isoformat() if entry.sent_at else "",
                "prompt_key": entry.prompt_key or "", "prompt_text": entry.prompt_text or "",
                "checkin_state": entry.checkin_state or "",
                "checkin_intensity": "" if entry.checkin_intensity is None
                else entry.checkin_intensity}
        if not entry.answers:
            if entry.checkin_state or entry.checkin_intensity is not None:
                rows.append({**dict.fromkeys(EXPORT_COLUMNS, ""), **base})
            continue
        for answer in entry.answers:
            rows.append({**base, "question": answer.question + 1, "answer_kind": answer.kind,
                         "answer": answer.text or answer.value or "",
                         "voice_seconds": answer.voice_seconds or "",
                         "answered_at": answer.at.isoformat(),
                         "edited_at": answer.edited_at.isoformat() if answer.edited_at else ""})
    return rows


def _cell(value: object) -> str:
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula; a quote keeps it as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(entries: list[TimelineEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in export_rows(entries):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


async def voice_note(session: AsyncSession, client_id: int, reply_id: int) -> VoiceNote | None:
    reply = await session.get(Reply, reply_id)
    if reply is None or reply.client_id != client_id:
        return None
    return await session.get(VoiceNote, reply_id)
