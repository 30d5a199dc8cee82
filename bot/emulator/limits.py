"""Telegram's flood limits as token buckets: one for the whole bot, one per chat.

On the outbound path the emulator answers a message-producing request over either
limit with 429 and a retry_after, as Telegram does, so the dispatcher's rate
limiting and retries are tested against the real behaviour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from bot.emulator.config import EmulatorConfig


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` a second; a message takes one."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.updated = now

    def seconds_until_free(self, now: float) -> float:
        """0 if a token is available now, else how long until one is."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= 1:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class FloodControl:
    """Decides whether a message to a chat may go now; takes tokens only when it may."""

    def __init__(self, config: EmulatorConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._monotonic = monotonic
        self._global: TokenBucket | None = None
        self._chats: dict[int | str, TokenBucket] = {}

    def reset(self) -> None:
        """Forget all buckets, e.g. after the rates were changed."""
        self._global = None
        self._chats.clear()

    def retry_after(self, chat_id: int | str | None) -> int | None:
        """None if the message may go (and it is counted), else whole seconds to wait (>= 1)."""
        config = self._config
        if not config.rate_limits:
            return None
        now = self._monotonic()
        if self._global is None:
            self._global = TokenBucket(config.global_rate, config.global_burst, now)
        wait = self._global.seconds_until_free(now)
        chat_bucket = None
        if chat_id is not None:
            chat_bucket = self._chats.get(chat_id)
            if chat_bucket is None:
                chat_bucket = TokenBucket(config.chat_rate, config.chat_burst, now)
                self._chats[chat_id] = chat_bucket
            wait = max(wait, chat_bucket.seconds_until_free(now))
        if wait > 0:
            return max(1, math.ceil(wait)) if wait != math.inf else 3600
        self._global.take()
        if chat_bucket is not None:
            chat_bucket.take()
        return None
