"""Webhook delivery: the emulator pushes updates to a small local receiver, in order,
with the secret header, and retries what the receiver does not take."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot
from telegram.error import BadRequest, Conflict

from bot.emulator import EmulatorControl, ServerThread

SECRET = "s3cret-Token_for-tests"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookReceiver:
    """A bot's webhook endpoint in miniature: records every push and can fail the first few."""

    def __init__(self) -> None:
        self.failures_left = 0
        self.attempts: list[tuple[str | None, dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._changed = threading.Condition()
        self.app = Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        body = await request.json()
        await asyncio.sleep(0.005)  # hold each push a moment, so overlapping pushes would show
        self.in_flight -= 1
        with self._changed:
            self.attempts.append((request.headers.get(SECRET_HEADER), body))
            if self.failures_left > 0:
                self.failures_left -= 1
                status = 500
            else:
                self.accepted.append(body)
                status = 200
            self._changed.notify_all()
        return Response(status_code=status)

    def wait_for_accepted(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.accepted) >= count, within):
                raise TimeoutError(f"{len(self.accepted)} of {count} pushes arrived")
            return list(self.accepted)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    hook = WebhookReceiver()
    with ServerThread(hook.app) as server:
        yield hook, f"{server.url}/hook"


async def webhook_info_once_delivered(bot: Bot) -> Any:
    """getWebhookInfo once the queue is empty: the receiver records a push a moment before
    its 200 reaches the emulator, which only then drops the update."""
    deadline = time.monotonic() + 5
    info = await bot.get_webhook_info()
    while info.pending_update_count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        info = await bot.get_webhook_info()
    return info


async def texts_pushed(hook: WebhookReceiver, count: int) -> list[str]:
    accepted = await asyncio.to_thread(hook.wait_for_accepted, count)
    return [update["message"]["text"] for update in accepted]


async def test_updates_are_pushed_in_order_with_the_secret_header(
    ptb_bot: Bot, telegram: EmulatorControl, receiver: tuple[WebhookReceiver, str]
) -> None:
    """Each update is POSTed as JSON with the secret header, in order; polling is then refused."""
    hook, url = receiver
    alice = await telegram.create_user("Alice")
    assert await ptb_bot.set_webhook(url, secret_token=SECRET)
    for text in ("one", "two", "three"):
        await telegram.send_text(alice, text)

    assert await texts_pushed(hook, 3) == ["one", "two", "three"]
    assert {secret for secret, _ in hook.attempts} == {SECRET}
    info = await webhook_info_once_delivered(ptb_bot)
    assert info.url == url
    assert info.pending_update_count == 0
    with pytest.raises(Conflict, match="webhook is active"):
        await ptb_bot.get_updates()


async def test_a_refused_push_is_retried_and_order_is_kept(
    ptb_bot: Bot, telegram: EmulatorControl, receiver: tuple[WebhookReceiver, str]
) -> None:
    """After a 500 the same update is pushed again, before any later one, one push at a time."""
    hook, url = receiver
    hook.failures_left = 1
    alice = await telegram.create_user("Alice")
    await ptb_bot.set_webhook(url, secret_token=SECRET)
    await telegram.send_text(alice, "first")
    await telegram.send_text(alice, "second")

    assert await texts_pushed(hook, 2) == ["first", "second"]
    assert [body["message"]["text"] for _, body in hook.attempts] == ["first", "first", "second"]
    assert hook.most_in_flight == 1
    info = await webhook_info_once_delivered(ptb_bot)
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None
    stats = await telegram.stats()
    assert (stats["webhook_failures"], stats["webhook_pushes"]) == (1, 2)


async def test_an_unreachable_webhook_keeps_the_update_for_later(
    ptb_bot: Bot, telegram: EmulatorControl
) -> None:
    """While nobody listens the update stays queued; after deleteWebhook getUpdates has it."""
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    alice = await telegram.create_user("Alice")
    await ptb_bot.set_webhook(f"http://127.0.0.1:{closed_port}/hook")
    await telegram.send_text(alice, "are you there?")

    deadline = time.monotonic() + 5
    info = await ptb_bot.get_webhook_info()
    while info.last_error_message is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        info = await ptb_bot.get_webhook_info()
    assert info.last_error_message == "Connection refused"
    assert info.pending_update_count == 1

    await ptb_bot.delete_webhook()
    assert [u.message.text for u in await ptb_bot.get_updates()] == ["are you there?"]


async def test_dropping_pending_updates_empties_the_queue(
    ptb_bot: Bot, telegram: EmulatorControl, receiver: tuple[WebhookReceiver, str]
) -> None:
    """setWebhook with drop_pending_updates discards what was waiting; new updates still come."""
    hook, url = receiver
    alice = await telegram.create_user("Alice")
    await telegram.send_text(alice, "old")
    await ptb_bot.set_webhook(url, drop_pending_updates=True)
    await telegram.send_text(alice, "new")

    assert await texts_pushed(hook, 1) == ["new"]


async def test_a_secret_with_odd_characters_is_refused(ptb_bot: Bot) -> None:
    """Telegram allows only letters, digits, _ and - in a secret token."""
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await ptb_bot.set_webhook("http://127.0.0.1:9/hook", secret_token="not ok!")
