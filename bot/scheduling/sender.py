"""The dispatcher's Sender over python-telegram-bot: Telegram errors become our SendErrors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from telegram import Bot, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot import messages
from bot.handlers.keyboards import consent_message, prompt_message
from bot.messages import render
from bot.scheduling.dispatcher import (
    ConsentRequest,
    Outbound,
    Rejected,
    RetryLater,
    SendError,
    Transient,
    Unreachable,
)


def _translate(error: Exception) -> SendError:
    if isinstance(error, RetryAfter):
        wait = error.retry_after
        return RetryLater(wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait))
    if isinstance(error, Forbidden):
        return Unreachable("Forbidden")
    if isinstance(error, BadRequest):
        if "chat not found" in error.message.lower():
            return Unreachable("BadRequest: chat not found")
        return Rejected("BadRequest")
    if isinstance(error, ChatMigrated):
        return Rejected("ChatMigrated")
    if isinstance(error, TimedOut | NetworkError):
        return Transient(type(error).__name__)
    return Transient(type(error).__name__)


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._chats: dict[int, tuple[asyncio.Lock, int]] = {}  # a lock and how many want it

    @contextlib.asynccontextmanager
    async def _in_turn(self, chat_id: int) -> AsyncIterator[None]:
        """One message at a time to a chat, in the order they were handed over: two due at
        once (a partner's news and a reveal, say) would otherwise race and arrive swapped."""
        lock, users = self._chats.get(chat_id, (asyncio.Lock(), 0))
        self._chats[chat_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._chats[chat_id]
            if users == 1:
                del self._chats[chat_id]
            else:
                self._chats[chat_id] = (lock, users - 1)

    async def _send(self, chat_id: int, text: str, **options: Any) -> int:
        async with self._in_turn(chat_id):
            try:
                message = await self.bot.send_message(chat_id, text, **options)
            except Exception as error:
                raise _translate(error) from None
        return message.message_id

    async def send_prompt(self, item: Outbound) -> int:
        rendered = prompt_message(item.delivery_id, item.prompt, item.language)
        reply_to = item.prompt.get("reply_to")  # a notice about a prompt quotes it
        return await self._send(
            item.chat_id, rendered.text, reply_markup=rendered.keyboard,
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to else None)

    async def send_reminder(self, chat_id: int, reply_to_message_id: int,
                            language: str | None) -> int:
        return await self._send(chat_id, render(messages.REMINDER, language), reply_parameters=(
            ReplyParameters(reply_to_message_id, allow_sending_without_reply=True)))

    async def send_consent_request(self, item: ConsentRequest) -> int:
        rendered = consent_message(item.text, item.language)
        return await self._send(item.chat_id, rendered.text, reply_markup=rendered.keyboard)
