"""The therapist's daily digest: who answered, who has gone quiet, open alerts (review path).

Sent once a day at the therapist's chosen local time. It names clients but carries none of their
words unless the therapist turned that on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import Reply, Therapist
from bot.library import Library
from bot.library.schema import parse_hhmm
from bot.services import alerts, practice
from bot.services.onboarding import OnboardingError

EXCERPT = 160  # characters of a reply shown when the therapist asked for words in the digest


@dataclass
class Digest:
    answered: list[tuple[str, int]] = field(default_factory=list)  # (name, answers) in 24 h
    quiet: list[tuple[str, int]] = field(default_factory=list)  # (name, days without a reply)
    open_alerts: list[tuple[str, str]] = field(default_factory=list)  # (name, category)
    excerpts: list[tuple[str, str]] = field(default_factory=list)  # (name, words), if wanted

    @property
    def empty(self) -> bool:
        return not (self.answered or self.quiet or self.open_alerts)


def configure(therapist: Therapist, at: str | None, with_text: bool, timezone: str | None) -> None:
    if at is not None:
        try:
            parse_hhmm(at)
        except ValueError:
            raise OnboardingError("choose the digest's time like 18:30") from None
    therapist.digest_at = at
    therapist.digest_with_text = with_text
    if timezone is not None:
        therapist.timezone = timezone


def zone_of(therapist: Therapist, settings: Settings) -> ZoneInfo:
    return ZoneInfo(therapist.timezone or settings.default_timezone)


def is_due(therapist: Therapist, now: datetime, settings: Settings) -> bool:
    """At or after the chosen local time, and not yet sent on that local day."""
    if therapist.digest_at is None or therapist.telegram_user_id is None:
        return False
    local = now.astimezone(zone_of(therapist, settings))
    return (local.time() >= parse_hhmm(therapist.digest_at)
            and therapist.digest_sent_on != local.date().isoformat())


def mark_sent(therapist: Therapist, now: datetime, settings: Settings) -> None:
    therapist.digest_sent_on = now.astimezone(zone_of(therapist, settings)).date().isoformat()


async def compose(session: AsyncSession, therapist: Therapist, library: Library,
                  clock: Clock) -> Digest:
    now = clock.now()
    rows = await practice.summaries(session, therapist.id, library, clock)
    digest = Digest()
    since = now - timedelta(days=1)
    by_id = {row.id: row for row in rows}
    recent = list(await session.scalars(select(Reply).where(
        Reply.client_id.in_(list(by_id)), Reply.created_at >= since).order_by(Reply.created_at)))
    counts: dict[int, int] = {}
    latest_words: dict[int, str] = {}
    for reply in recent:
        counts[reply.client_id] = counts.get(reply.client_id, 0) + 1
        if reply.text:
            latest_words[reply.client_id] = reply.text
    digest.answered = [(by_id[c].name, n) for c, n in counts.items()]
    for row in rows:
        days = row.quiet_for(now)
        if days is not None and days >= practice.QUIET_DAYS:
            digest.quiet.append((row.name, days))
    digest.open_alerts = [(a.client, a.category) for a in
                          await alerts.for_therapist(session, therapist.id, open_only=True)]
    if therapist.digest_with_text:
        digest.excerpts = [(by_id[c].name, _excerpt(words)) for c, words in latest_words.items()]
    return digest


def _excerpt(words: str) -> str:
    words = " ".join(words.split())
    return words if len(words) <= EXCERPT else words[:EXCERPT - 1].rstrip() + "…"
