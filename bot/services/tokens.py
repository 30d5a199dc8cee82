"""Single-purpose, unguessable tokens for deep links; only their hashes are stored."""

from __future__ import annotations

import hashlib
import secrets

# Telegram deep-link parameters allow A-Z a-z 0-9 _ - and up to 64 characters.
THERAPIST_PREFIX = "t_"


def new_token() -> str:
    """24 characters, 144 bits. Never one that starts like a therapist's link, which `/start`
    would read as one (one invite in about 4,000 would otherwise fail)."""
    while (token := secrets.token_urlsafe(18)).startswith(THERAPIST_PREFIX):
        pass
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
