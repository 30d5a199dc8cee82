"""Dashboard sign-in without passwords: one-time links a therapist gets from the bot or the admin.

A link works once and for a few minutes; only its hash is stored. "Sign out everywhere" raises
the therapist's session epoch, and a session from an older epoch is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import LoginLink, Therapist
from bot.services.onboarding import OnboardingError
from bot.services.tokens import new_token, token_hash


class LinkState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class LinkCheck:
    state: LinkState
    therapist: Therapist | None = None


async def issue_link(session: AsyncSession, therapist_id: int, clock: Clock,
                     minutes: float) -> str:
    """A new sign-in token; the caller turns it into a URL (`/login/<token>`)."""
    if await session.get(Therapist, therapist_id) is None:
        raise OnboardingError(f"there is no therapist {therapist_id}")
    token = new_token()
    now = clock.now()
    session.add(LoginLink(therapist_id=therapist_id, token_hash=token_hash(token), created_at=now,
                          expires_at=now + timedelta(minutes=minutes)))
    await session.flush()
    return token


def login_url(web_url: str, token: str) -> str:
    return f"{web_url.rstrip('/')}/login/{token}"


async def check_link(session: AsyncSession, token: str, clock: Clock) -> LinkCheck:
    link = await session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash(token)))
    if link is None:
        return LinkCheck(LinkState.UNKNOWN)
    therapist = await session.get(Therapist, link.therapist_id)
    if link.used_at is not None:
        return LinkCheck(LinkState.USED, therapist)
    if link.expires_at <= clock.now():
        return LinkCheck(LinkState.EXPIRED, therapist)
    return LinkCheck(LinkState.VALID, therapist)


async def redeem_link(session: AsyncSession, token: str, clock: Clock) -> LinkCheck:
    """Use the link up: VALID (with the therapist) once, USED after that."""
    check = await check_link(session, token, clock)
    if check.state is LinkState.VALID:
        link = await session.scalar(select(LoginLink).where(LoginLink.token_hash == token_hash(token)))
        assert link is not None
        link.used_at = clock.now()
    return check


async def sign_out_everywhere(session: AsyncSession, therapist_id: int) -> None:
    therapist = await session.get(Therapist, therapist_id)
    if therapist is not None:
        therapist.session_epoch += 1
