"""The catalog of everything the bot says to people."""

from __future__ import annotations

import re
import string

from babel.messages.pofile import read_po

from bot import messages
from tests.conftest import ROOT

CATALOG = {name: value for name, value in vars(messages).items()
           if name.isupper() and isinstance(value, str) and name not in {"DOMAIN"}}
FORBIDDEN = re.compile(r"\b(should|must|disorder|diagnos\w*|symptom\w*|patient)\b", re.I)


def test_every_message_is_in_the_translation_template() -> None:
    """bot/locale/interlude.pot (from `make messages`) holds every catalog sentence."""
    with (ROOT / "bot" / "locale" / "interlude.pot").open("rb") as file:
        template = {message.id for message in read_po(file) if message.id}
    missing = [name for name, text in CATALOG.items() if text not in template]
    assert missing == [], "run `make messages` and commit bot/locale/interlude.pot"


def test_messages_render_with_their_placeholders_filled() -> None:
    """Every placeholder in every message is filled when rendered; none is left in braces."""
    for name, text in CATALOG.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        rendered = messages.render(text, "en", **{f: "X" for f in fields})
        assert "{" not in rendered, name


def test_client_facing_words_stay_in_the_voice() -> None:
    """No sentence tells a client what they should do or speaks in clinical terms."""
    assert {name: text for name, text in CATALOG.items() if FORBIDDEN.search(text)} == {}


def test_an_unknown_language_falls_back_to_english() -> None:
    """A client whose Telegram is set to a language with no translation reads English."""
    assert messages.render(messages.PAUSED, "tlh") == messages.PAUSED
