"""Telegram's limits, applied to every request the bot makes (prompts and replies alike).

python-telegram-bot's AIORateLimiter has no per-chat limit for private chats, retries nothing by
default, and lets any finished request end a 429 pause early (PTB issue 5338). This limiter
keeps one global bucket (30 messages/s unless configured) and one bucket per chat (1/s with a
small burst), and a 429 pauses every request until the server's retry_after has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

# Methods that put a message in a chat; these count against Telegram's message limits.
COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
IDLE_BUCKETS_KEPT = 10_000
# Pass as `rate_limit_args` to send ahead of the queue (crisis replies and therapist alerts).
PRIORITY = 1
ApiResult = bool | dict[str, Any] | list[dict[str, Any]] | None


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; waiters are served in order."""

    def __init__(self, rate: float, burst: float, monotonic: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._tokens = burst
        self._stamp = monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.burst

    def take_now(self) -> None:
        """Take a token at once, ahead of every waiter, going into debt if need be.

        The waiters then wait the debt out, so the rate over time still holds."""
        self._refill()
        self._tokens -= 1

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class TelegramRateLimiter(BaseRateLimiter[int]):
    """Global and per-chat pacing plus a shared 429 pause, with retries on 429."""

    def __init__(self, per_second: float = 30, per_chat: float = 1, chat_burst: int = 2,
                 max_retries: int = 3, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        # A burst of one paces sends evenly, so the server never sees more than `per_second`.
        self._global = TokenBucket(per_second, 1, monotonic)
        self._per_chat_rate = per_chat
        self._chat_burst = chat_burst
        self._chats: dict[int | str, TokenBucket] = {}
        self._paused_until = 0.0
        self.max_retries = max_retries
        self.retries_after_429 = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        self._chats.clear()

    def _chat(self, chat_id: int | str) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= IDLE_BUCKETS_KEPT:
                self._chats = {k: b for k, b in self._chats.items() if not b.full}
            bucket = TokenBucket(self._per_chat_rate, self._chat_burst, self._monotonic)
            self._chats[chat_id] = bucket
        return bucket

    async def _wait_out_pause(self) -> None:
        # Loop rather than wait on an event: only the clock ends a pause, never another request.
        while (remaining := self._paused_until - self._monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> ApiResult:
        counted = endpoint.startswith(COUNTED_PREFIXES)
        chat_id = data.get("chat_id")
        priority = rate_limit_args == PRIORITY
        attempt = 0
        while True:
            await self._wait_out_pause()
            if counted and priority:
                # A crisis answer goes ahead of any backlog of prompts, never behind it.
                self._global.take_now()
                if chat_id is not None:
                    self._chat(chat_id).take_now()
            elif counted:
                await self._global.acquire()
                if chat_id is not None:
                    await self._chat(chat_id).acquire()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                seconds = error.retry_after
                delay = seconds.total_seconds() if hasattr(seconds, "total_seconds") else seconds
                self._paused_until = max(self._paused_until, self._monotonic() + float(delay))
                self.retries_after_429 += 1
                log.warning("Telegram asked us to wait %.1f s (%s)", delay, endpoint)
                attempt += 1
                if attempt > self.max_retries:
                    raise
