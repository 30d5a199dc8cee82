"""Starting and stopping the emulator on a background thread."""

from __future__ import annotations

import asyncio
import time

import httpx
from telegram import Bot

from bot.emulator import EmulatorConfig, EmulatorControl, EmulatorThread

from .conftest import TOKEN, until_called


async def test_the_thread_serves_on_a_free_port_until_stopped() -> None:
    """start() returns once requests are answered; after stop() the port no longer answers."""
    emulator = EmulatorThread(EmulatorConfig(username="SomeOtherBot"))
    with emulator:
        assert emulator.port != 0
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{emulator.url}/bot{TOKEN}/getMe")
        assert answer.json()["result"]["username"] == "SomeOtherBot"
    async with httpx.AsyncClient() as client:
        refused = False
        try:
            await client.get(f"{emulator.url}/bot{TOKEN}/getMe")
        except httpx.ConnectError:
            refused = True
    assert refused


async def test_stopping_ends_a_waiting_long_poll_at_once() -> None:
    """A getUpdates waiting on the server does not hold up stop()."""
    emulator = EmulatorThread().start()
    bot = Bot(TOKEN, base_url=f"{emulator.url}/bot")
    async with bot, EmulatorControl(emulator.url) as telegram:
        polling = asyncio.create_task(bot.get_updates(timeout=30))
        await until_called(telegram, "getUpdates")
        started = time.monotonic()
        await asyncio.to_thread(emulator.stop)
        assert await asyncio.wait_for(polling, 5) == ()
    assert time.monotonic() - started < 3
