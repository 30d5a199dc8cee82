"""A client's own data: a full copy (/mydata), erasure (/delete), and retention.

Erasure deletes rows; it does not flag them. What outlives it is what the practice must keep: an
Erasure row (that it happened, when, at whose request) and crisis alerts, which hold no words,
only a category and times, so that crisis referrals stay countable.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import (
    Alert,
    CheckIn,
    Client,
    ClientStatus,
    Consent,
    Delivery,
    Enrolment,
    Erasure,
    Invite,
    QuestionnaireResponse,
    Reply,
    ReplyRevision,
    VoiceNote,
)
from bot.services import audit, questionnaires
from bot.services.onboarding import revoke_consent

EXPORT_FORMAT = "interlude-my-data/1"


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def export_client_data(session: AsyncSession, client: Client, clock: Clock) -> dict[str, Any]:
    """Everything stored about this client, readable: what /mydata sends them."""
    def rows(model: Any, *order: Any) -> Any:
        return session.scalars(select(model).where(model.client_id == client.id).order_by(*order))

    deliveries = {d.id: d for d in await rows(Delivery, Delivery.scheduled_for, Delivery.id)}
    replies = list(await rows(Reply, Reply.created_at, Reply.id))
    reply_ids = [reply.id for reply in replies]
    revisions: dict[int, list[ReplyRevision]] = {}
    for revision in await session.scalars(select(ReplyRevision).where(
            ReplyRevision.reply_id.in_(reply_ids)).order_by(ReplyRevision.replaced_at)):
        revisions.setdefault(revision.reply_id, []).append(revision)
    voices = {v.reply_id: v for v in await session.scalars(
        select(VoiceNote).where(VoiceNote.reply_id.in_(reply_ids)))}

    def reply_json(reply: Reply) -> dict[str, Any]:
        delivery = deliveries.get(reply.delivery_id) if reply.delivery_id else None
        voice = voices.get(reply.id)
        return {
            "at": _when(reply.created_at), "kind": reply.kind.value,
            "answering": delivery.prompt.get("text") if delivery else None,
            "words": reply.text, "choice": reply.value,
            "voice_note": None if reply.voice_duration is None else {
                "seconds": reply.voice_duration, "mime_type": voice.mime_type if voice else None,
                "audio_base64": base64.b64encode(voice.content).decode() if voice else None},
            "edited_at": _when(reply.edited_at),
            "earlier_versions": [{"words": r.text, "until": _when(r.replaced_at)}
                                 for r in revisions.get(reply.id, [])],
        }

    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(clock.now()),
        "about_you": {
            "name": client.display_name, "status": client.status.value,
            "language": client.language_code, "time_zone": client.timezone,
            "quiet_hours": f"{client.quiet_start}–{client.quiet_end}",
            "paused_until": _when(client.paused_until), "joined": _when(client.created_at),
        },
        "consents": [{"version": c.version, "given": _when(c.given_at), "withdrawn": _when(c.revoked_at)}
                     for c in await rows(Consent, Consent.given_at)],
        "programs": [{"program": e.program_key, "medicine_session": _when(e.anchor_at),
                      "from": _when(e.starts_at), "until": _when(e.ends_at), "ended": _when(e.ended_at)}
                     for e in await rows(Enrolment, Enrolment.created_at)],
        "prompts": [{"prompt": d.prompt.get("text"), "planned_for": _when(d.scheduled_for),
                     "sent": _when(d.sent_at), "status": d.status.value}
                    for d in deliveries.values()],
        "replies": [reply_json(reply) for reply in replies],
        "check_ins": [{"at": _when(c.recorded_at), "state": c.state.value if c.state else None,
                       "intensity": c.intensity} for c in await rows(CheckIn, CheckIn.recorded_at)],
        "questionnaires": [
            {"questionnaire": r.title, "began": _when(r.started_at),
             "finished": _when(r.completed_at), "status": r.status, "total": r.total,
             "band": r.band,
             "answers": [{"question": item.text, "answer": r.label(n)}
                         for n, item in enumerate(r.questionnaire.items)]}
            for r in await questionnaires.results(session, client.id)],
        "alerts_to_your_therapist": [
            {"at": _when(a.created_at), "about": a.category, "seen": _when(a.acknowledged_at)}
            for a in await rows(Alert, Alert.created_at)],
    }


def offer_erasure(client: Client) -> str:
    """A fresh one-time value for the "erase everything" button; an older button stops working."""
    client.erase_nonce = secrets.token_urlsafe(12)
    return client.erase_nonce


def erasure_confirmed(client: Client, nonce: str) -> bool:
    return client.erase_nonce is not None and secrets.compare_digest(client.erase_nonce, nonce)


async def erase_client(session: AsyncSession, client: Client, clock: Clock,
                       *, requested_by: str = "client") -> Erasure:
    """Delete the client and everything of theirs, for real; keep only the fact of it.

    A client still taking part is first stopped as /stop would: a couple ends for both (the
    partner is told kindly, nothing pending is revealed) and the partner's own data stays.
    """
    if client.status is not ClientStatus.STOPPED:
        await revoke_consent(session, client, clock)
    counts = 0
    reply_ids = select(Reply.id).where(Reply.client_id == client.id).scalar_subquery()
    for statement in (
        delete(VoiceNote).where(VoiceNote.reply_id.in_(reply_ids)),
        delete(ReplyRevision).where(ReplyRevision.reply_id.in_(reply_ids)),
        *(delete(model).where(model.client_id == client.id)
          for model in (CheckIn, Reply, QuestionnaireResponse, Delivery, Enrolment, Consent,
                        Invite)),
    ):
        counts += (await session.execute(statement)).rowcount or 0  # type: ignore[attr-defined]
    # Alerts keep their category and times for the referral counts, and lose who they were about.
    await session.execute(update(Alert).where(Alert.client_id == client.id)
                          .values(client_id=None, reply_id=None))
    erasure = Erasure(therapist_id=client.therapist_id, former_client_id=client.id,
                      requested_by=requested_by, rows_deleted=counts + 1, erased_at=clock.now())
    await audit.record(session, audit.Actor(None, "telegram" if requested_by == "client" else "cli"),
                       "data erased", clock, client_id=client.id,
                       detail=f"at the {requested_by}'s request, {erasure.rows_deleted} rows")
    await session.delete(client)
    session.add(erasure)
    await session.flush()
    return erasure


async def purge_old_replies(session: AsyncSession, clock: Clock, days: int) -> int:
    """Retention: delete replies (with their edits, voice notes, check-ins and questionnaire
    answers) older than `days`."""
    if days <= 0:
        return 0
    cutoff = clock.now() - timedelta(days=days)
    old = select(Reply.id).where(Reply.created_at < cutoff).scalar_subquery()
    await session.execute(delete(VoiceNote).where(VoiceNote.reply_id.in_(old)))
    await session.execute(delete(ReplyRevision).where(ReplyRevision.reply_id.in_(old)))
    await session.execute(delete(CheckIn).where(CheckIn.recorded_at < cutoff))
    await session.execute(delete(QuestionnaireResponse).where(
        QuestionnaireResponse.started_at < cutoff))
    purged = await session.scalar(select(func.count()).select_from(Reply).where(Reply.created_at < cutoff))
    await session.execute(delete(Reply).where(Reply.created_at < cutoff))
    return int(purged or 0)
