"""End-to-end harness: the real bot over real HTTP against the emulator, with a clock we move.

The bot runs in the test's event loop (polling, inbox, handlers); the emulator runs in a thread.
Scheduled time is a FakeClock, so a week of prompts takes milliseconds; nothing sleeps for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import Runtime, build_runtime
from bot.clock import FakeClock
from bot.config import Settings
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.db.models import Therapist
from bot.emulator.config import EmulatorConfig
from bot.emulator.control import EmulatorControl
from bot.emulator.runner import EmulatorThread
from bot.ingest.webhook import WebhookServer
from bot.library import Library
from bot.services import onboarding
from tests.conftest import make_settings

WEBHOOK_SECRET = "webhook-secret_for-tests"


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorThread]:
    # Generous limits by default, so conversations are quick; tests about limits tighten them.
    config = EmulatorConfig(global_rate=1000, global_burst=1000, chat_rate=50, chat_burst=50)
    with EmulatorThread(config) as thread:
        yield thread


@dataclass
class Person:
    """A simulated Telegram user talking to the bot through the emulator."""

    control: EmulatorControl
    harness: BotHarness
    id: int

    async def send(self, text: str, **extra: Any) -> dict[str, Any]:
        self.harness.said_by_people.append(text)
        sent = await self.control.send_text(self.id, text, **extra)
        await self.harness.settle()
        return sent

    async def send_payload(self, **payload: Any) -> dict[str, Any]:
        sent = await self.control.send(self.id, **payload)
        await self.harness.settle()
        return sent

    async def tap(self, label: str) -> dict[str, Any]:
        """Press the newest button with this label."""
        for message in reversed(await self.control.bot_messages(self.id)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                if any(button["text"] == label for button in row):
                    pressed = await self.control.press(self.id, message["message_id"], button_text=label)
                    await self.harness.settle()
                    return pressed
        raise AssertionError(f"no button {label!r}; the bot said: {await self.said()}")

    async def said(self) -> list[str]:
        return [m.get("text", "") for m in await self.control.bot_messages(self.id)]

    async def last(self) -> str:
        return (await self.said())[-1]

    async def buttons(self) -> list[str]:
        messages = await self.control.bot_messages(self.id)
        markup = (messages[-1].get("reply_markup") or {}) if messages else {}
        return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class BotHarness:
    settings: Settings
    db: Database
    library: Library
    clock: FakeClock
    emulator: EmulatorThread
    control: EmulatorControl
    runtime: Runtime | None = None
    webhook: WebhookServer | None = None
    people: list[Person] = field(default_factory=list)
    # Everything people typed (invite tokens included): none of it may reach a log line.
    said_by_people: list[str] = field(default_factory=list)
    # Client names (invites) and Telegram first names: none may reach a log line either.
    names: set[str] = field(default_factory=set)

    async def start(self, *, jobs: bool = False, webhook: bool = False) -> None:
        """Start the bot: polling, or with `webhook` its endpoint served for the emulator to POST to."""
        self.runtime = build_runtime(
            self.settings, self.db, self.library, self.clock, api_url=self.emulator.url
        )
        if webhook:
            self.webhook = WebhookServer(self.runtime.webhook_routes(WEBHOOK_SECRET, "/hook"), "127.0.0.1", 0)
            await self.webhook.start()
            url = f"http://127.0.0.1:{self.webhook.port}/hook"
            await self.runtime.start(jobs=jobs, webhook=url, secret=WEBHOOK_SECRET)
        else:
            await self.runtime.start(poll=True, jobs=jobs)

    async def start_with_jobs(self) -> None:
        """Start as in production: PTB's JobQueue drives the dispatcher."""
        await self.start(jobs=True)

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def settle(self, within: float = 10.0) -> None:
        """Wait until every update the emulator holds is stored and handled, and every lane is
        done (a lane may still be speaking after its update is marked handled)."""
        assert self.runtime is not None
        deadline = asyncio.get_running_loop().time() + within
        while True:
            stats = await self.control.stats()
            if (stats["pending_updates"] == 0 and not self.runtime.poller.busy
                    and await self.runtime.inbox.unprocessed_count() == 0):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the bot did not settle: {stats['pending_updates']} pending")
            await asyncio.sleep(0.01)

    async def deliver_due(self) -> Any:
        """Run the dispatcher and housekeeping now (the JobQueue does this every second)."""
        assert self.runtime is not None
        report = await self.runtime.dispatcher.run_until_idle()
        await self.runtime.housekeeping()
        # What housekeeping queued (a paired answer revealed, say) goes out in the same round.
        later = await self.runtime.dispatcher.run_until_idle()
        for name in ("claimed", "sent", "retried", "failed", "missed", "skipped", "postponed"):
            setattr(report, name, getattr(report, name) + getattr(later, name))
        return report

    async def evening_checkins_due(self, count: int) -> list[int]:
        """`count` consenting clients with the evening check-in planned, and the clock at 20:00
        in Berlin on the day it falls due; returns their Telegram user ids."""
        from tests.integration.helpers import active_client

        await self.control.configure(require_user_start=False)
        users = [await self.control.create_user(f"Client {n}") for n in range(count)]
        for user in users:
            await active_client(self.db, self.clock, self.settings, self.library,
                                telegram_id=user, name=f"Client {user}")
        assert self.runtime is not None
        await self.runtime.planner.plan()
        self.clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=ZoneInfo("Europe/Berlin")))
        return users

    async def person(self, first_name: str = "Sam", language_code: str = "en") -> Person:
        self.names.add(first_name)
        user_id = await self.control.create_user(first_name, language_code=language_code)
        person = Person(self.control, self, user_id)
        self.people.append(person)
        return person

    async def invite(
        self,
        name: str = "Sam",
        program: str | None = "evening-checkin",
        timezone: str | None = "Europe/Berlin",
        anchor: datetime | None = None,
    ) -> tuple[int, str]:
        self.names.add(name)
        async with self.db.transaction() as session:
            therapist_id = await session.scalar(select(Therapist.id).limit(1))
            if therapist_id is None:
                therapist_id = (
                    await onboarding.add_therapist(session, "Dr Rivera", self.clock, self.settings)
                ).id
            issued = await onboarding.invite_client(
                session,
                therapist_id=therapist_id,
                name=name,
                clock=self.clock,
                settings=self.settings,
                library=self.library,
                program=program,
                anchor=anchor,
                timezone=timezone,
            )
        return issued.id, issued.token

    async def joined(self, name: str = "Sam", **invite: Any) -> tuple[int, Person]:
        """A client invited, onboarded (suggested zone, default quiet hours) and ready for prompts."""
        client_id, token = await self.invite(name, **invite)
        person = await self.person(name)
        await self.onboard(person, token)
        return client_id, person

    async def onboard(self, person: Person, token: str) -> None:
        """Open the invite, agree, confirm the suggested time zone, keep quiet hours."""
        await person.send(f"/start {token}")
        await person.tap("Yes, I agree")
        await person.tap("Yes, that's right")
        await person.tap("That suits me")


@pytest.fixture
async def harness(
    tmp_path: Path,
    library: Library,
    emulator: EmulatorThread,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[BotHarness]:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        tmp_path, telegram_api_url=emulator.url, rate_limit_per_chat=50, rate_limit_chat_burst=50
    )
    db = Database.from_url(database_url)
    await upgrade(db.engine)
    control = EmulatorControl(emulator.url)
    await control.reset()
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # Monday 10:00 in Berlin
    harness = BotHarness(settings, db, library, clock, emulator, control)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
        await control.aclose()
        await db.dispose()
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    leaked = [text for text in harness.said_by_people if len(text) >= 6 and text in logged]
    leaked += [name for name in harness.names if re.search(rf"\b{re.escape(name)}\b", logged)]
    assert leaked == [], "client text reached a log line"
    for token in (t.split(" ", 1)[1] for t in harness.said_by_people if t.startswith("/start ")):
        assert token not in logged, "an invite token reached a log line"
