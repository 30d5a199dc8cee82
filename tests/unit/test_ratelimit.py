"""The rate limiter: Telegram's pace kept, and a crisis answer never stuck behind a backlog."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.error import RetryAfter

from bot.scheduling.ratelimit import PRIORITY, TelegramRateLimiter


def recorder(order: list[str], name: str) -> Any:
    async def call() -> dict[str, Any]:
        order.append(name)
        return {}

    return call


async def test_a_priority_send_overtakes_a_queue_of_prompts() -> None:
    """With 20 prompts waiting on a 10 msg/s limit, the crisis reply goes out second, not last."""
    limiter = TelegramRateLimiter(per_second=10, per_chat=100, chat_burst=100)
    order: list[str] = []
    queued = [
        asyncio.create_task(
            limiter.process_request(
                recorder(order, f"prompt {n}"), (), {}, "sendMessage", {"chat_id": n}, None
            )
        )
        for n in range(20)
    ]
    await asyncio.sleep(0.01)  # the first goes, the rest wait on the bucket
    await limiter.process_request(
        recorder(order, "crisis"), (), {}, "sendMessage", {"chat_id": 999}, PRIORITY
    )
    assert order.index("crisis") <= 2
    for task in queued:
        task.cancel()


async def test_the_pace_holds_after_a_priority_send() -> None:
    """A priority send is paid back: 5 sends at 20 msg/s after it still take about 0.25 s."""
    limiter = TelegramRateLimiter(per_second=20, per_chat=100, chat_burst=100)
    order: list[str] = []
    await limiter.process_request(recorder(order, "crisis"), (), {}, "sendMessage", {"chat_id": 1}, PRIORITY)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(5):
        await limiter.process_request(recorder(order, str(n)), (), {}, "sendMessage", {"chat_id": n}, None)
    assert loop.time() - started >= 0.2


async def test_a_429_pauses_every_request_until_its_retry_after() -> None:
    """After Telegram says 'retry after 1', nothing is sent for that second, then the call succeeds."""
    limiter = TelegramRateLimiter(per_second=100, per_chat=100, chat_burst=100)
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def flaky() -> dict[str, Any]:
        calls.append(loop.time())
        if len(calls) == 1:
            raise RetryAfter(1)
        return {}

    await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.95
    assert limiter.retries_after_429 == 1
