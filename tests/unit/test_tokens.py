"""Deep-link tokens: a client's invite is never mistaken for a therapist's link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.services import tokens


def test_an_invite_token_never_starts_like_a_therapist_link(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: Iterator[str] = iter(["t_looks-like-a-therapist", "t_again-unlucky", "Qx7-plain_token"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda _: next(drawn))
    assert tokens.new_token() == "Qx7-plain_token"


def test_tokens_are_long_and_fit_a_deep_link() -> None:
    drawn = {tokens.new_token() for _ in range(2000)}
    assert len(drawn) == 2000
    assert all(len(token) == 24 and not token.startswith(tokens.THERAPIST_PREFIX) for token in drawn)
    assert all(set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
               for token in drawn)
