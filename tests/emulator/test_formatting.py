"""Telegram's text rules in isolation: HTML parse mode, UTF-16 lengths, command entities."""

from __future__ import annotations

import pytest

from bot.emulator.formatting import (
    EntityParseError,
    command_entities,
    parse_html,
    utf16_length,
)


def test_utf16_length_counts_astral_characters_twice() -> None:
    """Characters outside the Basic Multilingual Plane count as two units, others as one."""
    assert utf16_length("abc") == 3
    assert utf16_length("é") == 1
    assert utf16_length("😀") == 2
    assert utf16_length("👩‍👩‍👧") == 8  # three emoji joined by two zero-width joiners


def test_html_nesting_gives_entities_in_utf16_offsets() -> None:
    """Nested tags become entities whose offsets count UTF-16 units of the plain text."""
    text, entities = parse_html('😀 <b>bold <i>both</i></b> <a href="https://x.org/?a=1&amp;b=2">link</a>')
    assert text == "😀 bold both link"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
        {"type": "text_link", "offset": 13, "length": 4, "url": "https://x.org/?a=1&b=2"},
    ]


def test_html_character_references_become_characters() -> None:
    """&lt; &gt; &amp; &quot; and numeric references are replaced; a lone & stays."""
    text, entities = parse_html("&lt;3 &amp; &#128512; &#x41; &quot;hi&quot; A & B &nbsp;")
    assert text == '<3 & 😀 A "hi" A & B &nbsp;'
    assert entities == []


def test_pre_with_a_language_is_one_entity() -> None:
    """<pre><code class="language-x"> makes one pre entity that carries the language."""
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert text == "x = 1"
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]


def test_empty_tags_leave_no_entity() -> None:
    """A tag around nothing makes no entity, as Telegram drops empty ones."""
    assert parse_html("a<b></b>b") == ("ab", [])


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("é <marquee>x</marquee>", 'Unsupported start tag "marquee" at byte offset 3'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x</b>", 'Unexpected end tag "b" at byte offset 1'),
        ('<span class="red">x</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_malformed_html_is_described_as_telegram_does(html: str, message: str) -> None:
    """Each kind of malformed HTML fails with Telegram's wording and UTF-8 byte offsets."""
    with pytest.raises(EntityParseError) as failure:
        parse_html(html)
    assert str(failure.value) == message


def test_commands_are_marked_where_words_start() -> None:
    """/commands at the start of a word become bot_command entities, with any @botname."""
    assert command_entities("/start abc-123") == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert command_entities("😀 then /pause@InterludeDemoBot") == [
        {"type": "bot_command", "offset": 8, "length": 23}
    ]
    assert command_entities("and/or 1/2") == []
