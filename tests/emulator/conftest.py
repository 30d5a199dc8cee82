"""Fixtures for the emulator's tests: one emulator per session on a free local port,
reset before each test, driven by the control client and by a real
python-telegram-bot `Bot` whose every request and answer is recorded."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from telegram import Bot
from telegram.error import RetryAfter
from telegram.request import HTTPXRequest, RequestData

from bot.emulator import EmulatorConfig, EmulatorControl, EmulatorThread
from bot.emulator.botapi import BotApiSpec, load_spec

TOKEN = "123456789:AAE-interlude_test_token"
BOT_ID = 123456789


@dataclass
class ApiCall:
    """One Bot API call as it went over the wire."""

    method: str
    status: int
    body: dict[str, Any]


class RecordingRequest(HTTPXRequest):
    """python-telegram-bot's own HTTP layer, keeping every answer for the spec checks."""

    def __init__(self, calls: list[ApiCall]) -> None:
        super().__init__(read_timeout=15.0)
        self.calls = calls

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        status, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        if "/file/bot" in url:
            return status, payload  # a download: bytes, not a Bot API answer
        self.calls.append(ApiCall(url.rsplit("/", 1)[-1], status, json.loads(payload)))
        return status, payload


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorThread]:
    # Rate limits off by default (reset returns to this); limit tests turn them on.
    config = EmulatorConfig(rate_limits=False, webhook_retry_delay=0.02, webhook_retry_max_delay=0.1)
    with EmulatorThread(config) as running:
        yield running


@pytest.fixture(scope="session")
def spec() -> BotApiSpec:
    return load_spec()


@pytest.fixture
async def telegram(emulator: EmulatorThread) -> AsyncIterator[EmulatorControl]:
    async with EmulatorControl(emulator.url) as control:
        await control.reset()
        yield control


@pytest.fixture
def api_calls() -> list[ApiCall]:
    return []


@pytest.fixture
async def ptb_bot(
    emulator: EmulatorThread, telegram: EmulatorControl, api_calls: list[ApiCall]
) -> AsyncIterator[Bot]:
    bot = Bot(
        TOKEN,
        base_url=f"{emulator.url}/bot",
        base_file_url=f"{emulator.url}/file/bot",
        request=RecordingRequest(api_calls),
        get_updates_request=RecordingRequest(api_calls),
    )
    async with bot:
        yield bot


async def started_user(telegram: EmulatorControl, name: str = "Alice") -> int:
    """A person who has written to the bot, so the bot may write back."""
    user_id = await telegram.create_user(name, "en")
    await telegram.send_text(user_id, "/start")
    return user_id


def retry_seconds(error: RetryAfter) -> float:
    """RetryAfter's seconds, whichever form this PTB version hands out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def until_called(telegram: EmulatorControl, method: str, times: int = 1) -> None:
    """Return once the emulator has received `method` `times` times (a waiting long poll
    counts as soon as it arrives), so tests need not guess with a sleep."""
    deadline = time.monotonic() + 5
    while (await telegram.stats())["methods"].get(method, 0) < times:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} was not called {times} times")
        await asyncio.sleep(0.005)
