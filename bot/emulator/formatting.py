"""Message text as Telegram measures and marks it: HTML parse mode, UTF-16 lengths and
bot_command entities.

The emulator uses it on the outbound path (the bot's sendMessage with parse_mode HTML
must be refused where Telegram refuses it, and measured after parsing) and on the
inbound path (a user's "/start TOKEN" carries a bot_command entity, which
python-telegram-bot's CommandHandler needs).
"""

from __future__ import annotations

import re
from typing import Any

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units, after entity parsing

# Tags Telegram's HTML parse mode knows, with the entity each one makes.
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SPECIAL_TAGS = {"a", "span", "blockquote", "tg-emoji", "tg-time"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)"
    r"((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)"
    r"\s*/?>"
)
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]*")
_ATTRIBUTE = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")
_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![^\s])")


class EntityParseError(ValueError):
    """Telegram's "can't parse entities" refusal; the message is Telegram's wording."""


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is two)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities for every /command that starts a word, as Telegram marks them."""
    if "/" not in text:
        return []
    entities = []
    for found in _COMMAND.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_length(text[: found.start()]),
                "length": utf16_length(found.group()),
            }
        )
    return entities


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities Telegram makes from `source` in HTML parse mode.

    Raises EntityParseError where Telegram answers "can't parse entities".
    """
    if "<" not in source and "&" not in source:
        return source, []
    pieces: list[str] = []
    position = 0  # in UTF-16 units of the plain text built so far
    open_tags: list[tuple[str, dict[str, Any] | None]] = []
    entities: list[dict[str, Any]] = []
    index = 0
    length = len(source)
    while index < length:
        next_tag = source.find("<", index)
        next_reference = source.find("&", index)
        if next_tag < 0 and next_reference < 0:
            stop = length
        elif next_tag < 0:
            stop = next_reference
        elif next_reference < 0:
            stop = next_tag
        else:
            stop = min(next_tag, next_reference)
        if stop > index:
            chunk = source[index:stop]
            pieces.append(chunk)
            position += utf16_length(chunk)
            index = stop
        if index >= length:
            break
        if source[index] == "&":
            reference = _CHARACTER_REFERENCE.match(source, index)
            character = _resolve_reference(reference.group(1)) if reference else None
            if reference is None or character is None:
                # Telegram leaves a lone or unknown "&..." as it is.
                pieces.append("&")
                position += 1
                index += 1
            else:
                pieces.append(character)
                position += utf16_length(character)
                index = reference.end()
            continue
        if source.startswith("</", index):
            index = _close_tag(source, index, open_tags, entities, position)
            continue
        index = _open_tag(source, index, open_tags, entities, position)
    if open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1][0]}"')
    kept = [entity for entity in entities if entity["length"] > 0]
    return "".join(pieces), kept


def _open_tag(
    source: str,
    index: int,
    open_tags: list[tuple[str, dict[str, Any] | None]],
    entities: list[dict[str, Any]],
    position: int,
) -> int:
    tag = _START_TAG.match(source, index)
    if tag is None:
        name_match = _TAG_NAME.match(source, index + 1)
        name = name_match.group() if name_match else ""
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, index)}')
    name = tag.group(1).lower()
    if name not in _SIMPLE_TAGS and name not in _SPECIAL_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, index)}')
    attributes = {
        found.group(1).lower(): _unescape(found.group(2) or found.group(3) or found.group(4) or "")
        for found in _ATTRIBUTE.finditer(tag.group(2))
    }
    entity: dict[str, Any] = {"type": "", "offset": position, "length": 0}
    makes_entity = True
    if name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[name]
        parent = open_tags[-1] if open_tags else None
        if name == "code" and parent is not None and parent[0] == "pre":
            # <pre><code class="language-x"> is one pre entity with a language.
            language = attributes.get("class", "")
            if language.startswith("language-") and parent[1] is not None:
                parent[1]["language"] = language[len("language-") :]
            makes_entity = False
    elif name == "a":
        href = attributes.get("href")
        entity["type"] = "text_link"
        entity["url"] = href
        makes_entity = bool(href)
    elif name == "span":
        if attributes.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        entity["type"] = "spoiler"
    elif name == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in attributes else "blockquote"
    elif name == "tg-emoji":
        emoji_id = attributes.get("emoji-id")
        if not emoji_id:
            raise EntityParseError('Tag "tg-emoji" must have attribute "emoji-id"')
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = emoji_id
    else:  # tg-time
        unix = attributes.get("unix", "")
        if not unix.isdigit():
            raise EntityParseError('Tag "tg-time" must have attribute "unix"')
        entity["type"] = "date_time"
        entity["unix_time"] = int(unix)
        if attributes.get("format"):
            entity["date_time_format"] = attributes["format"]
    if makes_entity:
        entities.append(entity)
    open_tags.append((name, entity if makes_entity else None))
    return tag.end()


def _close_tag(
    source: str,
    index: int,
    open_tags: list[tuple[str, dict[str, Any] | None]],
    entities: list[dict[str, Any]],
    position: int,
) -> int:
    tag = _END_TAG.match(source, index)
    if tag is None:
        raise EntityParseError(f"Can't find end of the tag at byte offset {_byte_offset(source, index)}")
    name = tag.group(1).lower()
    if not open_tags:
        raise EntityParseError(f'Unexpected end tag "{name}" at byte offset {_byte_offset(source, index)}')
    expected, entity = open_tags[-1]
    if name != expected:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(source, index)}, "
            f'expected "</{expected}>", found "</{name}>"'
        )
    open_tags.pop()
    if entity is not None:
        entity["length"] = position - entity["offset"]
    return tag.end()


def _resolve_reference(body: str) -> str | None:
    if body.startswith("#"):
        number = int(body[2:], 16) if body[1:2] in "xX" and len(body) > 2 else int(body[1:])
        if number == 0 or number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
            return None
        return chr(number)
    return _NAMED_ENTITIES.get(body.lower())


def _unescape(value: str) -> str:
    if "&" not in value:
        return value
    return _CHARACTER_REFERENCE.sub(lambda found: _resolve_reference(found.group(1)) or found.group(), value)


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))
