"""Sessions, sign-in state and CSRF for the dashboard and the JSON API.

A session is a signed cookie (HttpOnly, SameSite=Lax) holding the therapist's id, their session
epoch, a CSRF token and when it was last used. It ends after INTERLUDE_WEB_IDLE_MINUTES without
use, and everywhere at once when the therapist raises their epoch. Every request that changes
something must carry the CSRF token: a form field `csrf`, or the `X-CSRF-Token` header.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from bot.config import Settings
from bot.services.audit import Actor

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SECRET_FILE = "web-secret.key"  # noqa: S105 - a file name, not a secret


class SignInRequired(Exception):
    """No valid session: the page sends the browser to sign in; the API answers 401."""


class CsrfRefused(Exception):
    """A change without the session's CSRF token: refused with 403."""


@dataclass(frozen=True)
class SignedIn:
    therapist_id: int
    name: str
    channel: str  # web or api

    @property
    def actor(self) -> Actor:
        return Actor(self.therapist_id, self.channel)


def secret_key(settings: Settings) -> str:
    """INTERLUDE_WEB_SECRET_KEY, or a key generated once into the data folder (mode 600)."""
    if settings.web_secret_key is not None:
        return settings.web_secret_key.get_secret_value()
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    log.info("generated a dashboard signing key in the data folder")
    return key


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Applied to every route: a request that may change something needs the token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(CSRF_FIELD)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not expected or not given or not hmac.compare_digest(str(expected), given):
        raise CsrfRefused()


def start_session(request: Request, therapist_id: int, epoch: int, now: float) -> None:
    """A fresh session after sign-in: nothing from before it carries over."""
    request.session.clear()
    request.session.update({"therapist": therapist_id, "epoch": epoch, "seen": now, "since": now})
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()
