"""Single-purpose, unguessable tokens for deep links; only their hashes are stored."""

from __future__ import annotations

import hashlib
import secrets

# Telegram deep-link parameters allow A-Z a-z 0-9 _ - and up to 64 characters.
THERAPIST_PREFIX = "t_"


def new_token() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
