"""The Bot API methods the emulator implements, with Telegram's limits and refusals.

Every request passes the same gate in `BotApi.call`: injected latency and faults,
the spec check (botapi.py), then flood control for methods that produce messages,
then the method itself. This is the emulator's side of the outbound path
(dispatcher -> send under Telegram's rate limits) and of the polling loop.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.emulator.botapi import ApiError, BotApiSpec, UploadedFile, bad_request
from bot.emulator.formatting import (
    MAX_MESSAGE_LENGTH,
    EntityParseError,
    parse_html,
    utf16_length,
)
from bot.emulator.limits import FloodControl
from bot.emulator.world import DEFAULT_UPDATE_KINDS, Chat, TelegramWorld, Webhook

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

MAX_UPDATES_PER_CALL = 100
MAX_CALLBACK_DATA_BYTES = 64
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # what a bot may upload through the official Bot API server
MAX_CALLBACK_ANSWER_LENGTH = 200

# Exactly one of these makes an inline button do something.
BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current content and reply markup of the message"
)


def counts_against_flood_limits(method: str) -> bool:
    """Telegram's flood limits apply to methods that produce or change messages."""
    if method == "sendChatAction":
        return False
    return method.startswith(("send", "edit")) or method in {
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }


class BotApi:
    """Answers Bot API calls against a TelegramWorld."""

    def __init__(self, world: TelegramWorld, spec: BotApiSpec) -> None:
        self.world = world
        self.spec = spec
        self.flood = FloodControl(world.config)
        self._random = random.Random()
        self._handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "logOut": self.say_ok,
            "close": self.say_ok,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "sendMessage": self.send_message,
            "sendDocument": self.send_document,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "answerCallbackQuery": self.answer_callback_query,
            "sendChatAction": self.send_chat_action,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "getFile": self.get_file,
        }
        self._flood_limited = frozenset(name for name in spec.methods if counts_against_flood_limits(name))

    async def call(self, method: str, raw: Mapping[str, Any]) -> Any:
        """The result of one Bot API call, or ApiError in Telegram's shape."""
        config = self.world.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if config.fail_ratio and self._random.random() < config.fail_ratio:
            raise ApiError(502, "Bad Gateway")
        params = self.spec.parse_parameters(method, raw)
        handler = self._handlers.get(method)
        if handler is None:
            raise bad_request(
                f"method {method} is part of the Bot API, but the Interlude emulator does not implement it"
            )
        if method in self._flood_limited:
            retry_after = self.flood.retry_after(params.get("chat_id"))
            if retry_after is not None:
                self.world.stats.rate_limited += 1
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        return await handler(params)

    # -- identity -----------------------------------------------------------

    async def get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.world.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def say_ok(self, params: dict[str, Any]) -> bool:
        return True

    # -- getting updates ----------------------------------------------------

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        world.supersede_polls()
        if "allowed_updates" in params:
            world.set_allowed_updates(params["allowed_updates"])
        world.confirm(params.get("offset"))
        limit = min(max(params.get("limit", MAX_UPDATES_PER_CALL), 1), MAX_UPDATES_PER_CALL)
        timeout = max(params.get("timeout", 0), 0)
        if not world.updates and timeout > 0:
            await world.wait_for_updates(timeout)
        updates = world.updates
        if len(updates) <= limit:
            return list(updates)
        return [updates[index] for index in range(limit)]

    async def set_webhook(self, params: dict[str, Any]) -> bool:
        world = self.world
        url = params["url"]
        if not url:
            return await self.delete_webhook(params)
        # Telegram insists on HTTPS; the emulator also takes http:// for local receivers.
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            world.drop_pending_updates()
        if "allowed_updates" in params:
            world.set_allowed_updates(params["allowed_updates"])
        world.set_webhook(
            Webhook(
                url=url,
                secret_token=secret,
                max_connections=params.get("max_connections", 40),
                ip_address=params.get("ip_address"),
            )
        )
        return True

    async def delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self.world.drop_pending_updates()
        self.world.delete_webhook()
        return True

    async def get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        world = self.world
        webhook = world.webhook
        info: dict[str, Any] = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(world.updates),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
            if webhook.ip_address:
                info["ip_address"] = webhook.ip_address
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
            if world.allowed_updates != DEFAULT_UPDATE_KINDS:
                info["allowed_updates"] = sorted(world.allowed_updates)
        return info

    # -- messages -----------------------------------------------------------

    async def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for_bot(params["chat_id"])
        text, entities = _message_text(params)
        reply_markup = self._reply_markup(chat, params.get("reply_markup"))
        reply_to = _reply_target(chat, params)
        return self.world.add_bot_message(chat, text, entities, reply_markup=reply_markup, reply_to=reply_to)

    async def send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        """A file the bot uploads (multipart); a file_id or URL of an existing file is refused."""
        chat = self._chat_for_bot(params["chat_id"])
        upload = params["document"]
        if not isinstance(upload, UploadedFile):
            raise bad_request("the emulator only accepts documents uploaded with the request")
        if len(upload.content) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        stored = self.world.add_file("documents", len(upload.content), upload.content)
        caption, entities = "", []
        if params.get("caption"):
            caption, entities = _message_text({"text": params["caption"],
                                               "parse_mode": params.get("parse_mode")})
            if utf16_length(caption) > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
        document = {"file_name": upload.filename, "mime_type": upload.content_type,
                    "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                    "file_size": stored.size}
        return self.world.add_bot_message(
            chat, caption, entities, reply_markup=self._reply_markup(chat, params.get("reply_markup")),
            reply_to=_reply_target(chat, params), document=document)

    async def edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._message_to_edit(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        if "text" not in params:
            raise bad_request("message text is empty")
        text, entities = _message_text(params)
        reply_markup = _inline_markup(params.get("reply_markup"))
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and reply_markup == message.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        # Telegram drops the keyboard when an edit does not repeat it.
        self.world.edit_bot_message(chat, message, text=text, entities=entities, reply_markup=reply_markup)
        return dict(message)

    async def edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._message_to_edit(params)
        reply_markup = _inline_markup(params.get("reply_markup"))
        if reply_markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        self.world.edit_bot_message(chat, message, reply_markup=reply_markup)
        return dict(message)

    async def answer_callback_query(self, params: dict[str, Any]) -> bool:
        world = self.world
        query = world.callback_queries.pop(params["callback_query_id"], None)
        if query is None:
            # Answered already, or never sent: Telegram does not tell the two apart.
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and utf16_length(text) > MAX_CALLBACK_ANSWER_LENGTH:
            world.callback_queries[params["callback_query_id"]] = query
            raise bad_request("MESSAGE_TOO_LONG")
        world.callback_answers.setdefault(query["person_id"], []).append(
            {
                "callback_query_id": params["callback_query_id"],
                "message_id": query["message_id"],
                "text": text,
                "show_alert": params.get("show_alert", False),
                "url": params.get("url"),
                "cache_time": params.get("cache_time", 0),
            }
        )
        chat = world.chats.get(query["chat_id"])
        if chat is not None:
            chat.changed()  # so the chat page, waiting on the chat, shows the answer
        return True

    async def send_chat_action(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for_bot(params["chat_id"])
        action = params["action"]
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.world.set_chat_action(chat, action)
        return True

    # -- commands -----------------------------------------------------------

    async def set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        if len(commands) > 100:
            raise bad_request("too many commands")
        for command in commands:
            if not _COMMAND_NAME.fullmatch(command["command"]):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.world.commands[_command_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.world.commands.get(_command_key(params), []))

    async def delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.world.commands.pop(_command_key(params), None)
        return True

    # -- files --------------------------------------------------------------

    async def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.world.files.get(params["file_id"])
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.as_telegram()

    # -- helpers ------------------------------------------------------------

    def _chat_for_bot(self, chat_id: int | str) -> Chat:
        """The chat a bot writes to, refused as Telegram refuses it."""
        world = self.world
        chat = world.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        if chat.is_private:
            person = world.people[chat.id]
            if person.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not person.started and world.config.require_user_start:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _message_to_edit(self, params: dict[str, Any]) -> tuple[Chat, dict[str, Any]]:
        if "inline_message_id" in params:
            raise bad_request(
                "inline messages are part of the Bot API, but the Interlude emulator does not implement them"
            )
        if "chat_id" not in params:
            raise bad_request("chat_id is empty")
        if "message_id" not in params:
            raise bad_request("message identifier is not specified")
        chat = self._chat_for_bot(params["chat_id"])
        message = chat.by_id.get(params["message_id"])
        if message is None:
            raise bad_request("message to edit not found")
        if not message["from"].get("is_bot"):
            raise bad_request("message can't be edited")
        return chat, message

    def _reply_markup(self, chat: Chat, markup: dict[str, Any] | None) -> dict[str, Any] | None:
        """The inline keyboard to keep on the message; reply keyboards go to the chat."""
        if markup is None:
            return None
        if "inline_keyboard" in markup:
            return _inline_markup(markup)
        if "keyboard" in markup:
            rows = []
            for row in markup["keyboard"]:
                rows.append([b if isinstance(b, str) else b.get("text", "") for b in row])
            chat.reply_keyboard = rows
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        return None


def _message_text(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities after parse_mode, with Telegram's checks on both."""
    text: str = params.get("text", "")
    entities: list[dict[str, Any]] = params.get("entities") or []
    parse_mode = params.get("parse_mode")
    if parse_mode:
        mode = parse_mode.lower()
        if mode == "html":
            try:
                text, entities = parse_html(text)
            except EntityParseError as problem:
                raise bad_request(f"can't parse entities: {problem}") from None
        elif mode in ("markdown", "markdownv2"):
            raise bad_request(
                f"parse_mode {parse_mode} is part of the Bot API, but the Interlude emulator only parses HTML"
            )
        else:
            raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_length(text) > MAX_MESSAGE_LENGTH:
        raise bad_request("message is too long")
    return text, entities


def _inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """An inline keyboard checked the way Telegram checks it; None for no keyboard."""
    if markup is None:
        return None
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        raise bad_request("an inline keyboard is required here")
    for row in keyboard:
        for button in row:
            actions = [name for name in BUTTON_ACTIONS if name in button]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if len(actions) > 1:
                raise bad_request(
                    "can't parse inline keyboard button: "
                    f"a button has more than one action ({', '.join(actions)})"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not url.startswith(("https://", "http://", "tg://")):
                raise bad_request("BUTTON_URL_INVALID")
    # Drop empty rows, as Telegram does.
    rows = [list(row) for row in keyboard if row]
    return {"inline_keyboard": rows} if rows else None


def _reply_target(chat: Chat, params: dict[str, Any]) -> dict[str, Any] | None:
    reply = params.get("reply_parameters")
    if reply is not None:
        message_id = reply["message_id"]
        allow_missing = reply.get("allow_sending_without_reply", False)
        if reply.get("chat_id") not in (None, chat.id):
            raise bad_request(
                "replies to messages in other chats are part of the Bot API, but the "
                "Interlude emulator does not implement them"
            )
    elif "reply_to_message_id" in params:
        message_id = params["reply_to_message_id"]
        allow_missing = params.get("allow_sending_without_reply", False)
    else:
        return None
    target = chat.by_id.get(message_id)
    if target is None and not allow_missing:
        raise bad_request("message to be replied not found")
    return target


def _command_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), params.get("language_code") or ""
