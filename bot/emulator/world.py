"""Everything the emulated Telegram remembers: people, chats and their transcripts, the
update queue the bot reads, files, callback queries, the webhook and the counters.

Both sides meet here: the control API (people typing, pressing, blocking) adds
messages and updates; the Bot API methods read updates and add the bot's messages.
All of it lives on the server's one event loop, so nothing here needs a lock.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.emulator.botapi import ApiError
from bot.emulator.config import EmulatorConfig
from bot.emulator.formatting import MAX_MESSAGE_LENGTH, command_entities, utf16_length

if TYPE_CHECKING:
    from bot.emulator.webhook import WebhookPusher

FIRST_PERSON_ID = 10001
BOT_FIRST_NAME = "Interlude"

# What Telegram sends when a bot has not chosen (allowed_updates empty or never set).
DEFAULT_UPDATE_KINDS = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
OPT_IN_UPDATE_KINDS = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# How long "typing…" shows after sendChatAction, as in Telegram's apps.
CHAT_ACTION_SECONDS = 5


class ControlError(Exception):
    """A control API request that cannot be carried out; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Person:
    """Someone on the Telegram side of the conversation."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    blocked: bool = False
    # Telegram lets a bot write to a person only after they wrote to it.
    started: bool = False
    telegram_user: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        self.telegram_user = user

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
            "blocked": self.blocked,
            "started": self.started,
        }


@dataclass
class Chat:
    """A chat and its whole transcript, both directions, as Telegram Message objects."""

    id: int
    info: dict[str, Any]  # the Telegram Chat object; replaced, never changed in place
    messages: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: set[int] = field(default_factory=set)
    next_message_id: int = 1
    version: int = 0  # goes up on every change, so a page can wait for the next one
    reply_keyboard: list[list[str]] | None = None
    action: str | None = None
    action_until: float = 0.0
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    @property
    def is_private(self) -> bool:
        return bool(self.info["type"] == "private")

    @property
    def instance(self) -> str:
        # Telegram's chat_instance: stable per chat, opaque to the bot.
        return str((self.id * 2654435761) % (1 << 63))

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.by_id[message["message_id"]] = message
        self.changed()

    def changed(self) -> None:
        self.version += 1
        _wake(self.waiters)


@dataclass
class StoredFile:
    """A file Telegram holds for the bot: a voice note, a photo or a sticker a person sent."""

    file_id: str
    file_unique_id: str
    file_path: str
    size: int

    def content(self) -> bytes:
        """The same bytes every time for the same file, so a test can compare downloads."""
        seed = hashlib.sha256(self.file_unique_id.encode()).digest()
        blocks = []
        produced = 0
        counter = 0
        while produced < self.size:
            block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            blocks.append(block)
            produced += len(block)
            counter += 1
        body = b"".join(blocks)[: self.size]
        # Voice notes start like an Ogg file, which is what Telegram stores.
        return b"OggS" + body[4:] if self.file_path.endswith(".oga") else body

    def as_telegram(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Stats:
    methods: Counter[str] = field(default_factory=Counter)
    delivered: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    webhook_pushes: int = 0
    webhook_failures: int = 0


POLL_SUPERSEDED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
POLL_ENDED_BY_WEBHOOK = "Conflict: terminated by setWebhook request"


class TelegramWorld:
    """The emulated Telegram's memory. One per app; used only on the server's event loop."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.bot_id = 0
        self._token = ""
        self.people: dict[int, Person] = {}
        self.chats: dict[int, Chat] = {}
        self.updates: deque[dict[str, Any]] = deque()
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: dict[int, list[dict[str, Any]]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_KINDS
        self.webhook: Webhook | None = None
        self.stats = Stats()
        # Update ids only ever grow, even across reset: a polling bot keeps its offset
        # and would silently skip updates whose ids started again from 1.
        self._next_update_id = 1
        self._next_person_id = FIRST_PERSON_ID
        self._serial = 0
        self._polls: list[asyncio.Future[str | None]] = []
        self._pusher: WebhookPusher | None = None

    # -- time and identity --------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def use_token(self, token: str) -> None:
        """The bot's id is the number before the colon in the token it calls with."""
        if token != self._token:
            self._token = token
            self.bot_id = int(token.split(":", 1)[0])

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": self.config.username,
        }

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # -- people and chats ---------------------------------------------------

    def add_person(
        self,
        first_name: str,
        *,
        language_code: str | None = None,
        person_id: int | None = None,
        username: str | None = None,
        last_name: str | None = None,
    ) -> Person:
        if person_id is None:
            while self._next_person_id in self.people:
                self._next_person_id += 1
            person_id = self._next_person_id
            self._next_person_id += 1
        elif person_id <= 0:
            raise ControlError(400, "a person's id must be a positive integer")
        if person_id in self.people:
            raise ControlError(409, f"person {person_id} already exists")
        person = Person(person_id, first_name, last_name, username, language_code)
        self.people[person_id] = person
        info: dict[str, Any] = {"id": person_id, "type": "private", "first_name": first_name}
        if last_name:
            info["last_name"] = last_name
        if username:
            info["username"] = username
        # A person's private chat with the bot has the person's id, as in Telegram.
        self.chats[person_id] = Chat(person_id, info, members={person_id})
        return person

    def person(self, person_id: int) -> Person:
        person = self.people.get(person_id)
        if person is None:
            raise ControlError(404, f"no person with id {person_id}")
        return person

    def chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ControlError(404, f"no chat with id {chat_id}")
        return chat

    def group_chat(self, description: dict[str, Any], person: Person) -> Chat:
        """The group a person writes in, created on first use, with the person in it."""
        chat_id = description.get("id")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id >= 0:
            raise ControlError(400, "a group chat needs a negative integer id")
        kind = description.get("type", "group")
        if kind not in ("group", "supergroup"):
            raise ControlError(400, 'a chat "type" must be "group" or "supergroup"')
        chat = self.chats.get(chat_id)
        if chat is None:
            title = description.get("title") or f"Group {-chat_id}"
            chat = Chat(chat_id, {"id": chat_id, "type": kind, "title": str(title)})
            self.chats[chat_id] = chat
        chat.members.add(person.id)
        return chat

    # -- what people do -----------------------------------------------------

    def post_message(
        self,
        person: Person,
        content: dict[str, Any],
        *,
        reply_to_message_id: int | None = None,
        chat: Chat | None = None,
    ) -> dict[str, Any]:
        """A person sends a message; the bot gets it as a `message` update."""
        chat = chat or self.chats[person.id]
        if chat.is_private and person.blocked:
            raise ControlError(409, "this person has blocked the bot; unblock first")
        message: dict[str, Any] = {
            "message_id": chat.take_message_id(),
            "from": person.telegram_user,
            "chat": chat.info,
            "date": self.now(),
        }
        if reply_to_message_id is not None:
            target = chat.by_id.get(reply_to_message_id)
            if target is None:
                raise ControlError(404, f"no message {reply_to_message_id} in chat {chat.id}")
            message["reply_to_message"] = quoted(target)
        message.update(content)
        chat.append(message)
        if chat.is_private:
            person.started = True
        update_id = self.enqueue("message", dict(message))
        return {"message_id": message["message_id"], "update_id": update_id}

    def edit_by_person(
        self, person: Person, message_id: int, text: str, chat: Chat | None = None
    ) -> int | None:
        """A person edits their text message; the bot gets an `edited_message` update."""
        chat = chat or self.chats[person.id]
        message = chat.by_id.get(message_id)
        if message is None or message["from"].get("id") != person.id:
            raise ControlError(404, f"person {person.id} sent no message {message_id} here")
        if "text" not in message:
            raise ControlError(400, "only text messages can be edited")
        content = text_content(text)
        message.pop("entities", None)
        message.update(content)
        message["edit_date"] = self.now()
        chat.changed()
        return self.enqueue("edited_message", dict(message))

    def press(
        self,
        person: Person,
        message_id: int,
        *,
        callback_data: str | None,
        button_text: str | None,
        forge: bool,
        chat: Chat | None = None,
    ) -> dict[str, Any]:
        """A person presses an inline button; the bot gets a `callback_query` update.

        A button that is not on the message is refused unless `forge`, which
        stands for a hostile client sending data the bot never offered.
        """
        chat = chat or self.chats[person.id]
        message = chat.by_id.get(message_id)
        data = _find_button_data(message, callback_data, button_text)
        if data is None:
            if not forge:
                wanted = (
                    f"callback_data {callback_data!r}"
                    if callback_data is not None
                    else f"text {button_text!r}"
                )
                raise ControlError(
                    400,
                    f'message {message_id} has no button with {wanted}; pass "forge": true to send it anyway',
                )
            if callback_data is None:
                raise ControlError(400, "a forged press needs callback_data")
            data = callback_data
        query_id = str(4_000_000_000_000_000_000 + self._next_serial())
        query: dict[str, Any] = {
            "id": query_id,
            "from": person.telegram_user,
            "chat_instance": chat.instance,
            "data": data,
        }
        if message is not None:
            query["message"] = dict(message)
        else:
            # What Telegram sends for a message the bot can no longer see.
            query["message"] = {"chat": chat.info, "message_id": message_id, "date": 0}
        self.callback_queries[query_id] = {
            "person_id": person.id,
            "chat_id": chat.id,
            "message_id": message_id,
        }
        update_id = self.enqueue("callback_query", query)
        return {"update_id": update_id, "callback_query_id": query_id}

    def set_blocked(self, person: Person, blocked: bool) -> int | None:
        """Block or unblock the bot; Telegram tells the bot with a `my_chat_member` update."""
        if person.blocked == blocked:
            return None
        person.blocked = blocked
        chat = self.chats[person.id]
        chat.changed()
        member = {"status": "member", "user": self.bot_user()}
        kicked = {"status": "kicked", "user": self.bot_user(), "until_date": 0}
        return self.enqueue(
            "my_chat_member",
            {
                "chat": chat.info,
                "from": person.telegram_user,
                "date": self.now(),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
        )

    def add_file(self, kind: str, size: int) -> StoredFile:
        serial = self._next_serial()
        unique = hashlib.sha256(f"{kind}:{serial}".encode()).hexdigest()[:16]
        extension = {"voice": "oga", "photos": "jpg", "stickers": "webp"}.get(kind, "bin")
        stored = StoredFile(
            file_id=f"{kind[:2].upper()}ACAgIAAxkBAAI{serial:08d}{unique}",
            file_unique_id=f"AgAD{unique}",
            file_path=f"{kind}/file_{serial}.{extension}",
            size=size,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # -- the update queue ---------------------------------------------------

    def enqueue(self, kind: str | None, payload: dict[str, Any]) -> int | None:
        """Queue an update for the bot; None if the bot's allowed_updates leave it out."""
        update_id = self._next_update_id
        self._next_update_id += 1
        if (
            kind is not None
            and kind not in self.allowed_updates
            and (kind in DEFAULT_UPDATE_KINDS or kind in OPT_IN_UPDATE_KINDS)
        ):
            return None
        update: dict[str, Any] = {"update_id": update_id}
        if kind is None:
            update.update(payload)
        else:
            update[kind] = payload
        self.updates.append(update)
        _wake(self._polls)
        if self._pusher is not None:
            self._pusher.wake()
        return update_id

    def inject(self, update: dict[str, Any]) -> int | None:
        """Queue an arbitrary update as given (only its update_id is ours)."""
        body = {key: value for key, value in update.items() if key != "update_id"}
        kinds = list(body)
        kind = kinds[0] if len(kinds) == 1 else None
        if kind is not None:
            return self.enqueue(kind, body[kind])
        return self.enqueue(None, body)

    def set_allowed_updates(self, kinds: Iterable[str]) -> None:
        chosen = frozenset(kinds)
        self.allowed_updates = chosen if chosen else DEFAULT_UPDATE_KINDS

    def confirm(self, offset: int | None) -> None:
        """Forget updates before `offset`; a negative offset keeps only the last -offset."""
        if offset is None:
            return
        updates = self.updates
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
            return
        while updates and updates[0]["update_id"] < offset:
            updates.popleft()

    def drop_pending_updates(self) -> None:
        self.updates.clear()

    async def wait_for_updates(self, seconds: float) -> None:
        """Return when an update arrives or `seconds` pass.

        A second getUpdates ends the one already waiting with 409, as Telegram does
        when two copies of a bot poll at once.
        """
        self.supersede_polls()
        waiting: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._polls.append(waiting)
        try:
            conflict = await asyncio.wait_for(waiting, seconds)
        except TimeoutError:
            return
        finally:
            if waiting in self._polls:
                self._polls.remove(waiting)
        if conflict is not None:
            raise ApiError(409, conflict)

    def supersede_polls(self, reason: str = POLL_SUPERSEDED) -> None:
        """End every waiting getUpdates with 409 and `reason`."""
        for waiting in self._polls:
            if not waiting.done():
                waiting.set_result(reason)
        self._polls.clear()

    async def wait_for_chat_change(self, chat: Chat, version: int, seconds: float) -> None:
        if chat.version != version:
            return
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        chat.waiters.append(waiting)
        try:
            await asyncio.wait_for(waiting, seconds)
        except TimeoutError:
            pass
        finally:
            if waiting in chat.waiters:
                chat.waiters.remove(waiting)

    # -- what the bot does --------------------------------------------------

    def add_bot_message(
        self,
        chat: Chat,
        text: str,
        entities: list[dict[str, Any]],
        *,
        reply_markup: dict[str, Any] | None,
        reply_to: dict[str, Any] | None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": chat.take_message_id(),
            "from": self.bot_user(),
            "chat": chat.info,
            "date": self.now(),
        }
        if reply_to is not None:
            message["reply_to_message"] = quoted(reply_to)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if reply_markup is not None:
            message["reply_markup"] = reply_markup
        # A message replaces the "typing…" status, as in Telegram's apps.
        chat.action = None
        chat.append(message)
        self.stats.delivered[chat.id] += 1
        return message

    def edit_bot_message(self, chat: Chat, message: dict[str, Any], **changes: Any) -> None:
        """Change a stored message in place (a None value removes the field)."""
        for name, value in changes.items():
            if value is None or value == []:
                message.pop(name, None)
            else:
                message[name] = value
        message["edit_date"] = self.now()
        chat.changed()

    def set_chat_action(self, chat: Chat, action: str) -> None:
        chat.action = action
        chat.action_until = self.clock.now().timestamp() + CHAT_ACTION_SECONDS
        chat.changed()

    def current_action(self, chat: Chat) -> str | None:
        if chat.action and self.clock.now().timestamp() < chat.action_until:
            return chat.action
        return None

    # -- webhook ------------------------------------------------------------

    def set_webhook(self, webhook: Webhook) -> None:
        from bot.emulator.webhook import WebhookPusher

        self.webhook = webhook
        # A bot that switches to a webhook stops any getUpdates still waiting.
        self.supersede_polls(POLL_ENDED_BY_WEBHOOK)
        if self._pusher is None:
            self._pusher = WebhookPusher(self)
            self._pusher.start()
        self._pusher.wake()

    def delete_webhook(self) -> None:
        self.webhook = None
        if self._pusher is not None:
            self._pusher.stop()
            self._pusher = None

    # -- housekeeping ---------------------------------------------------------

    def reset(self) -> None:
        """Forget people, chats, updates, files, commands, the webhook and the counters."""
        self.delete_webhook()
        self.people.clear()
        for chat in self.chats.values():
            _wake(chat.waiters)
        self.chats.clear()
        self.updates.clear()
        self.files.clear()
        self.files_by_path.clear()
        self.callback_queries.clear()
        self.callback_answers.clear()
        self.commands.clear()
        self.allowed_updates = DEFAULT_UPDATE_KINDS
        self.stats = Stats()
        self._next_person_id = FIRST_PERSON_ID

    def close(self) -> None:
        """Let every waiting request go, so the server can stop at once."""
        _wake(self._polls)
        for chat in self.chats.values():
            _wake(chat.waiters)
        self.delete_webhook()

    def stats_json(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "methods": dict(stats.methods),
            "delivered": {str(chat_id): count for chat_id, count in stats.delivered.items()},
            "rate_limited": stats.rate_limited,
            "errors": {str(code): count for code, count in stats.errors.items()},
            "pending_updates": len(self.updates),
            "webhook_pushes": stats.webhook_pushes,
            "webhook_failures": stats.webhook_failures,
        }


def text_content(text: str) -> dict[str, Any]:
    """The text fields of a message a person types, with Telegram's bot_command entities."""
    if not text.strip():
        raise ControlError(400, "message text is empty")
    if utf16_length(text) > MAX_MESSAGE_LENGTH:
        raise ControlError(400, "message is too long")
    content: dict[str, Any] = {"text": text}
    entities = command_entities(text)
    if entities:
        content["entities"] = entities
    return content


def quoted(message: dict[str, Any]) -> dict[str, Any]:
    """A message as it appears inside a reply: Telegram does not nest replies further."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _find_button_data(
    message: dict[str, Any] | None, callback_data: str | None, button_text: str | None
) -> str | None:
    if message is None or not message.get("from", {}).get("is_bot"):
        return None
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    for row in keyboard:
        for button in row:
            data = button.get("callback_data")
            if data is None:
                continue
            if callback_data is not None and data == callback_data:
                if button_text is None or button.get("text") == button_text:
                    return str(data)
            elif callback_data is None and button.get("text") == button_text:
                return str(data)
    return None


def _wake(waiters: list[Any]) -> None:
    for waiting in waiters:
        if not waiting.done():
            waiting.set_result(None)
    waiters.clear()
