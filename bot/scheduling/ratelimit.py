"""Telegram's limits, applied to every request the bot makes (prompts and replies alike).

python-telegram-bot's AIORateLimiter has no per-chat limit for private chats, retries nothing by
default, and lets any finished request end a 429 pause early (PTB issue 5338). This limiter
keeps one overall pace (30 messages/s unless configured) and one bucket per chat (1/s with a
small burst), and a 429 pauses every request until the server's retry_after has passed.

Telegram counts per bot, not per process. With one process (SQLite) the overall pace is a token
bucket in memory. With several processes on PostgreSQL it is one row of `send_pace` that every
process advances as it reserves send slots (a generic cell rate algorithm: the row holds the
next free slot), so together they never exceed the limit; a 429 is written to the same row and
every process waits it out.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

if TYPE_CHECKING:
    from bot.db.engine import Database

log = logging.getLogger(__name__)

# Methods that put a message in a chat; these count against Telegram's message limits.
COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
IDLE_BUCKETS_KEPT = 10_000
# Pass as `rate_limit_args` to send ahead of the queue (crisis replies and therapist alerts).
PRIORITY = 1
CATCH_UP_SECONDS = 0.1
GRANULARITY_SECONDS = 0.02  # how often a busy pace wakes at most (6 messages at 300/s)
ApiResult = bool | dict[str, Any] | list[dict[str, Any]] | None


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; waiters are served in order.

    Waiters queue as futures, and one task hands tokens out as they come, waking at most every
    `granularity` seconds: at 300 messages a second, a wake-up per message (a timer, a lock
    handed on, an event-loop turn each) cost more CPU than the message's own request. A
    wake-up lets through what has come in since, a few messages at once, far below `burst`.
    """

    def __init__(self, rate: float, burst: float, monotonic: Callable[[], float],
                 granularity: float = GRANULARITY_SECONDS) -> None:
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._granularity = granularity
        self._tokens = burst
        self._stamp = monotonic()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handing_out: asyncio.Task[None] | None = None

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.burst and not self._waiters

    def take_now(self) -> None:
        """Take a token at once, ahead of every waiter, going into debt if need be.

        The waiters then wait the debt out, so the rate over time still holds."""
        self._refill()
        self._tokens -= 1

    async def acquire(self) -> None:
        if not self._waiters:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        task = self._handing_out
        if task is None or task.done() or task.get_loop() is not loop:
            self._handing_out = loop.create_task(self._hand_out())
        await waiter  # cancelled before its turn: skipped; after it: its token is spent

    async def _hand_out(self) -> None:
        while self._waiters:
            self._refill()
            while self._waiters and self._tokens >= 1:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    self._tokens -= 1
                    waiter.set_result(None)
            if self._waiters:
                await asyncio.sleep(max((1 - self._tokens) / self.rate, self._granularity))


def catch_up(rate: float) -> float:
    """Slots a late sender may use at once: a tenth of a second's worth, at least one."""
    return max(1.0, rate * CATCH_UP_SECONDS)


class Pace(Protocol):
    """The overall pace: one slot per message, in the order asked for."""

    async def acquire(self) -> None: ...

    def take_now(self) -> None: ...


class SharedPace:
    """The overall pace shared by every process through the `send_pace` row (PostgreSQL).

    Slots are reserved a few at a time (as many as are waiting, at most `chunk_seconds` worth)
    in one UPDATE that moves the row's next free slot on; each slot is then waited for here.
    Times come from the database's clock, so processes need not agree on theirs.
    """

    NAME = "telegram"

    def __init__(self, db: Database, rate: float, *, chunk_seconds: float = 0.2,
                 pause_check_seconds: float = 0.25,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.interval = 1.0 / rate
        self.chunk = max(1, int(rate * chunk_seconds))
        self._monotonic = monotonic
        self._slots: deque[float] = deque()  # reserved slots, on our monotonic clock
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._debt = 0  # priority sends taken ahead of the shared pace, paid back next reserve
        self._pause_checked = -1e9
        self._pause_check_seconds = pause_check_seconds
        self._paused_until = 0.0
        self._ready = False

    async def _ensure_row(self) -> None:
        if self._ready:
            return
        async with self.db.transaction() as session:
            await session.execute(text(
                "INSERT INTO send_pace (name, next_at) VALUES (:name, clock_timestamp()) "
                "ON CONFLICT (name) DO NOTHING"), {"name": self.NAME})
        self._ready = True

    async def _reserve(self, count: int) -> None:
        await self._ensure_row()
        count += self._debt
        async with self.db.transaction() as session:
            row = (await session.execute(text(
                "UPDATE send_pace SET next_at = GREATEST(next_at, "
                "clock_timestamp() - make_interval(secs => :catch_up), "
                "COALESCE(paused_until, clock_timestamp() - make_interval(secs => :catch_up))) "
                "+ make_interval(secs => :span) "
                "WHERE name = :name RETURNING next_at, clock_timestamp() AS now"),
                {"name": self.NAME, "span": count * self.interval,
                 "catch_up": CATCH_UP_SECONDS})).one()
        local_now = self._monotonic()
        end: datetime = row.next_at
        start = local_now + (end - row.now).total_seconds() - count * self.interval
        slots = [start + n * self.interval for n in range(count)]
        self._slots.extend(slots[self._debt:])
        self._debt = 0

    async def acquire(self) -> None:
        if self._slots and not self._lock.locked():
            slot = self._slots.popleft()  # reserved already: no need to queue for the lock
        else:
            self._waiting += 1
            try:
                async with self._lock:
                    if not self._slots:
                        await self._reserve(min(self._waiting, self.chunk))
                    slot = self._slots.popleft()
            finally:
                self._waiting -= 1
        # Woken on a grid, so that the sends of nearby slots go in one event-loop turn rather
        # than a timer each (see TokenBucket); never before the slot, so the pace holds.
        wake = math.ceil(slot / GRANULARITY_SECONDS) * GRANULARITY_SECONDS
        if (wait := wake - self._monotonic()) > 0:
            await asyncio.sleep(wait)

    def take_now(self) -> None:
        self._debt += 1

    async def pause(self, seconds: float) -> None:
        """A 429: every process waits `seconds` before its next send."""
        self._slots.clear()  # reserved before the pause; the server wants none of them now
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)
        await self._ensure_row()
        async with self.db.transaction() as session:
            await session.execute(text(
                "UPDATE send_pace SET paused_until = GREATEST(COALESCE(paused_until, "
                "clock_timestamp()), clock_timestamp() + make_interval(secs => :seconds)) "
                "WHERE name = :name"), {"name": self.NAME, "seconds": seconds})

    async def paused_until(self) -> float:
        """When the shared pause ends, on our monotonic clock (read at most every 0.25 s)."""
        now = self._monotonic()
        if now - self._pause_checked >= self._pause_check_seconds:
            self._pause_checked = now
            await self._ensure_row()
            async with self.db.transaction() as session:
                remaining = await session.scalar(text(
                    "SELECT EXTRACT(EPOCH FROM paused_until - clock_timestamp()) "
                    "FROM send_pace WHERE name = :name"), {"name": self.NAME})
            if remaining is not None and float(remaining) > 0:
                self._paused_until = max(self._paused_until, now + float(remaining))
        return self._paused_until


class TelegramRateLimiter(BaseRateLimiter[int]):
    """Global and per-chat pacing plus a shared 429 pause, with retries on 429."""

    def __init__(self, per_second: float = 30, per_chat: float = 1, chat_burst: int = 2,
                 max_retries: int = 3, monotonic: Callable[[], float] = time.monotonic,
                 shared: SharedPace | None = None, connections: int = 64) -> None:
        self._monotonic = monotonic
        # No more requests at once than the HTTP pool has connections: requests queued inside
        # httpcore's pool are rescanned on every completion, which costs more CPU than sending.
        self._connections = asyncio.Semaphore(connections)
        # Sends are paced evenly; a tenth of a second's worth may catch up at once after a late
        # wake-up (a busy event loop), so the pace is kept without ever bursting past Telegram's.
        self._global: Pace = shared or TokenBucket(per_second, catch_up(per_second), monotonic)
        self._shared = shared
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

    async def _pause_ends(self) -> float:
        if self._shared is None:
            return self._paused_until
        try:
            return max(self._paused_until, await self._shared.paused_until())
        except Exception as error:  # the database is away: keep to this process's own pause
            log.warning("could not read the shared pause (%s)", type(error).__name__)
            return self._paused_until

    async def _wait_out_pause(self) -> None:
        # Loop rather than wait on an event: only the clock ends a pause, never another request.
        while (remaining := await self._pause_ends() - self._monotonic()) > 0:  # noqa: ASYNC110
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
                async with self._connections:
                    return await callback(*args, **kwargs)
            except RetryAfter as error:
                seconds = error.retry_after
                delay = seconds.total_seconds() if hasattr(seconds, "total_seconds") else seconds
                self._paused_until = max(self._paused_until, self._monotonic() + float(delay))
                self.retries_after_429 += 1
                if self._shared is not None:
                    try:
                        await self._shared.pause(float(delay))
                    except Exception as problem:
                        log.warning("could not share a 429 pause (%s)", type(problem).__name__)
                log.warning("Telegram asked us to wait %.1f s (%s)", delay, endpoint)
                attempt += 1
                if attempt > self.max_retries:
                    raise
