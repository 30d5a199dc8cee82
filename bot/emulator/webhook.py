"""Webhook delivery: while a webhook is set, the emulator POSTs each queued update to
the bot, as Telegram does, instead of waiting for getUpdates.

One update at a time and in order; an update leaves the queue only when the bot
answers 2xx. A failure (non-2xx, refused connection, timeout) is recorded for
getWebhookInfo and the same update is tried again after a pause that doubles each
time. This is the inbound path's other entry (DESIGN.md: webhook -> inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from bot.emulator.world import TelegramWorld

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name

log = logging.getLogger(__name__)


class WebhookPusher:
    """The one task per bot that pushes queued updates to its webhook."""

    def __init__(self, world: TelegramWorld) -> None:
        self._world = world
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook pusher")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        world = self._world
        delay = world.config.webhook_retry_delay
        async with httpx.AsyncClient(timeout=world.config.webhook_timeout) as client:
            while True:
                webhook = world.webhook
                if webhook is None:
                    return
                if not world.updates:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                update = world.updates[0]
                headers = {"Content-Type": "application/json"}
                if webhook.secret_token:
                    headers[SECRET_HEADER] = webhook.secret_token
                problem = await _push(client, webhook.url, update, headers)
                if problem is None:
                    # The queue may have been dropped while the push was under way.
                    if world.updates and world.updates[0] is update:
                        world.updates.popleft()
                    world.stats.webhook_pushes += 1
                    delay = world.config.webhook_retry_delay
                    continue
                world.stats.webhook_failures += 1
                webhook.last_error_date = world.now()
                webhook.last_error_message = problem
                await asyncio.sleep(delay)
                delay = min(delay * 2, world.config.webhook_retry_max_delay)


async def _push(
    client: httpx.AsyncClient, url: str, update: dict[str, object], headers: dict[str, str]
) -> str | None:
    """None if the bot took the update, else Telegram's words for what went wrong."""
    body = json.dumps(update, ensure_ascii=False).encode()
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.ConnectError:
        return "Connection refused"
    except httpx.TimeoutException:
        return "Read timeout expired"
    except httpx.HTTPError as error:
        # The error's class only: its text could echo part of the request.
        log.warning("webhook push failed: %s", type(error).__name__)
        return f"Connection error: {type(error).__name__}"
    with contextlib.suppress(Exception):
        await response.aclose()
    if 200 <= response.status_code < 300:
        return None
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = "Unknown"
    return f"Wrong response from the webhook: {response.status_code} {reason}"
