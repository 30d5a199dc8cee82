"""What the soak scenarios share: the emulator in a process of its own, a database, clients
seeded into it, `interlude run` processes to start, kill and restart, and people who write.

Every scenario reports what it measured as one JSON line and one line for people, then asserts
the guarantee it is about.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bot import bench
from bot.bench import BotProcess, bot_environment, emulator_process
from bot.config import Settings
from bot.db.encryption import KeyRing, use_key_ring
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.db.models import Client, Delivery, DeliveryStatus, Reply
from bot.emulator.control import EmulatorControl
from tests.conftest import ROOT

WORDS_PROMPT = "integration.body-after"
SEED = int(os.environ.get("INTERLUDE_SOAK_SEED", str(random.SystemRandom().randrange(10**6))))


def report(result: dict[str, Any], line: str) -> None:
    """One JSON line and one line for people (make soak shows them)."""
    print(json.dumps(result), flush=True)
    print(line, flush=True)


class Scene:
    """One scenario's world: the emulator at `url`, a database, bot processes in `folder`."""

    def __init__(self, folder: Path, url: str, database_url: str) -> None:
        self.folder = folder
        self.url = url
        self.database_url = database_url
        self.key = KeyRing.generate_key()
        use_key_ring(KeyRing([self.key]))
        self.settings = Settings(_env_file=None, data_dir=folder,  # type: ignore[call-arg]
                                 database_url=database_url, telegram_api_url=url,
                                 prompts_dir=ROOT / "prompts")
        self.db = Database.from_url(database_url)
        self.bots: list[BotProcess] = []
        self.random = random.Random(SEED)

    async def prepare(self) -> None:
        await upgrade(self.db.engine)

    def bot(self, name: str = "bot", **settings: object) -> BotProcess:
        """An `interlude run` process for this scene (not started); settings by Settings' names."""
        process = BotProcess(bot_environment(str(self.folder), self.database_url, self.url, self.key,
                                             **settings), self.folder / f"{name}.log")
        self.bots.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.bots:
            process.stop()

    # -- people and prompts -------------------------------------------------------------------

    async def people(self, count: int) -> list[int]:
        return await bench._create_users(self.url, count)

    async def seed(self, users: list[int], *, due_in: float = 0.0,
                   prompt_key: str = bench.PROMPT_KEY) -> None:
        """Consenting clients with no quiet hours, one prompt each due `due_in` seconds on."""
        await bench._seed(self.db, self.settings, users, due_in, prompt_key=prompt_key)

    async def make_due(self, due_in: float = 1.0) -> None:
        await bench.make_due(self.db, due_in)

    # -- what Telegram saw ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/emulator/stats", timeout=30).json()
        return result

    def delivered(self) -> dict[int, int]:
        """Messages the bot put in each chat."""
        return {int(chat): count for chat, count in self.stats()["delivered"].items()}

    def configure(self, **config: Any) -> None:
        httpx.post(f"{self.url}/emulator/config", json=config, timeout=30).raise_for_status()

    # -- what the database holds ----------------------------------------------------------------

    async def statuses(self) -> Counter[str]:
        async with self.db.transaction() as session:
            return Counter(str(status.value) for status in await session.scalars(select(Delivery.status)))

    async def in_flight(self) -> int:
        """Prompts claimed and not recorded as sent: the most a restart can send twice."""
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status == DeliveryStatus.SENDING)) or 0)

    async def replies_stored(self) -> int:
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Reply)) or 0)

    async def stored_messages(self) -> Counter[tuple[int, int]]:
        """(Telegram user, message id) of every stored reply, with how often it is stored."""
        async with self.db.transaction() as session:
            rows = (await session.execute(select(Client.telegram_user_id, Reply.telegram_message_id)
                                          .join(Client, Client.id == Reply.client_id))).all()
        return Counter((int(user), int(message)) for user, message in rows)


@contextmanager
def scene(folder: Path, database_url: str | None = None, **emulator: Any) -> Iterator[Scene]:
    """A scene with the emulator started (configured with `emulator`) and bot processes stopped
    at the end, whatever happened."""
    with emulator_process(require_user_start=False, **emulator) as url:
        world = Scene(folder, url, database_url or f"sqlite+aiosqlite:///{folder / 'soak.db'}")
        try:
            yield world
        finally:
            world.stop_all()


async def wait_for(check: Any, within: float, what: str, every: float = 0.25) -> Any:
    """Poll `check` (sync or async) until it returns something true; fail loudly after `within`."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def prompts_of(url: str, users: list[int], within: float = 120.0) -> dict[int, int]:
    """The message id of the prompt each person received (waits for them all)."""
    async with EmulatorControl(url, connections=20) as telegram:
        semaphore = asyncio.Semaphore(20)

        async def one(user: int) -> tuple[int, int]:
            async with semaphore:
                messages = await telegram.wait_for_bot_messages(user, 1, within=within)
                return user, int(messages[0]["message_id"])

        return dict(await asyncio.gather(*(one(user) for user in users)))


class Writers:
    """People answering their prompt at a steady pace, whether or not the bot is up (as people
    do); what they sent is kept, to be looked up in the database afterwards."""

    def __init__(self, url: str, prompts: dict[int, int], per_person: int, per_second: float) -> None:
        self.url = url
        self.prompts = prompts
        self.per_person = per_person
        self.interval = len(prompts) / per_second
        self.sent: list[tuple[int, int]] = []

    @property
    def total(self) -> int:
        return self.per_person * len(self.prompts)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            people = list(self.prompts.items())
            stagger = self.interval / max(1, len(people))

            async def person(index: int, user: int, prompt: int) -> None:
                await asyncio.sleep(index * stagger)
                for number in range(self.per_person):
                    started = time.monotonic()
                    answer = await http.post(f"/emulator/users/{user}/messages", json={
                        "text": f"Reply {number}: calmer today, some tension in my neck.",
                        "reply_to_message_id": prompt})
                    answer.raise_for_status()
                    self.sent.append((user, int(answer.json()["message_id"])))
                    await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

            await asyncio.gather(*(person(n, user, prompt) for n, (user, prompt) in enumerate(people)))


def acknowledgements(world: Scene, sent: list[tuple[int, int]], prompts_each: int = 1) -> dict[str, int]:
    """Thanks the bot said against replies sent, chat by chat: missing and said twice."""
    per_chat = Counter(user for user, _ in sent)
    delivered = world.delivered()
    missing = sum(max(0, count - (delivered.get(user, 0) - prompts_each))
                  for user, count in per_chat.items())
    extra = sum(max(0, delivered.get(user, 0) - prompts_each - count) for user, count in per_chat.items())
    return {"acknowledgements_missing": missing, "acknowledged_twice": extra}
