"""`interlude bench ingest`: the inbound path under load, from the emulator through the inbox to
stored, encrypted replies with their acknowledgement sent.

Simulated clients (100 by default) each have a prompt open and answer in turn: a reply to the
prompt, then a wait for the bot's acknowledgement (a long poll on the chat), then the next
reply. The bot is `interlude run` in a process of its own, polling getUpdates from the emulator
in another, as a practice runs it. Reported: replies a second, and the latency from a client's
message to the bot's acknowledgement (p50, p99). At the end every reply is looked up in the
database: each stored once, none lost, its text sealed.

Telegram's limits are off on both sides: 300 replies a second from 100 clients is three
messages a second into each chat, over Telegram's 1/s per chat, and the acknowledgements alone
would pass its 30/s overall. The figure is what the pipeline can take, not what Telegram allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from bot.bench import (
    BotProcess,
    _bench_settings,
    _create_users,
    _percentile,
    _seed,
    bot_environment,
    cpu_seconds,
    cpu_wait_seconds,
    emulator_server,
)
from bot.db.encryption import KeyRing, use_key_ring
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.db.models import Client, Reply
from bot.emulator.control import EmulatorControl

PROMPT_KEY = "integration.body-after"  # answered in words
WAIT_SECONDS = 60.0  # for one acknowledgement, before the run is called failed
# Everyday answers of a few lengths, none of them crisis language (that takes another path).
ANSWERS = (
    "Heavier than yesterday, but calm.",
    "My shoulders are tender and my breath is slower. I walked by the river after lunch.",
    "Light. I slept well for the first time in a week and noticed the birds this morning.",
    "A bit wobbly. I kept thinking about what came up with my mother, and then let it go.",
    "Open, mostly. Some tightness in my jaw when I remembered the drive home from the "
    "session, but it softened when I put my hand on my chest and breathed out slowly.",
)


class Quota:
    """Replies still to send, shared by every client: whoever is free takes the next."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def _client(telegram: EmulatorControl, user: int, prompt_id: int, quota: Quota,
                  latencies: list[float], sent: list[tuple[int, int]]) -> None:
    """One person answering their prompt again and again, each time waiting for the thanks."""
    number = 0
    while quota.take():
        words = f"{ANSWERS[(user + number) % len(ANSWERS)]} ({number})"
        started = time.perf_counter()
        message = await telegram.send_text(user, words, reply_to=prompt_id)
        await telegram.wait_for_answer(user, message["message_id"], message["version"],
                                       within=WAIT_SECONDS)
        latencies.append(time.perf_counter() - started)
        sent.append((user, message["message_id"]))
        number += 1


async def _prompts(telegram: EmulatorControl, users: list[int]) -> dict[int, int]:
    """Each person's prompt as it arrived (the bot's dispatcher sends them at start-up)."""
    async def one(user: int) -> tuple[int, int]:
        messages = await telegram.wait_for_bot_messages(user, 1, within=WAIT_SECONDS)
        return user, int(messages[0]["message_id"])

    return dict(await asyncio.gather(*(one(user) for user in users)))


async def count_replies(db: Database, sent: list[tuple[int, int]]) -> dict[str, Any]:
    """Every reply sent, looked up: lost (not stored), stored twice, stored without its prompt,
    and whether the stored text is sealed (read raw, past the encrypted column type)."""
    async with db.transaction() as session:
        people = dict((await session.execute(select(Client.telegram_user_id, Client.id))).all())
        stored = (await session.execute(
            select(Reply.client_id, Reply.telegram_message_id, Reply.delivery_id))).all()
        raw = await session.scalar(text("SELECT text FROM replies LIMIT 1"))
    expected = Counter((people[user], message_id) for user, message_id in sent)
    found = Counter((row.client_id, row.telegram_message_id) for row in stored)
    return {
        "stored": sum(found.values()),
        "lost": sum((expected - found).values()),
        "stored_twice": sum(count - 1 for count in found.values() if count > 1),
        "unexpected": sum((found - expected).values()),
        "without_prompt": sum(row.delivery_id is None for row in stored),
        "sealed": raw is not None and not any(answer[:20] in str(raw) for answer in ANSWERS),
    }


async def ingest(updates: int, clients: int = 100, database_url: str | None = None) -> dict[str, Any]:
    """Run the ingest benchmark once; returns its figures."""
    key = KeyRing.generate_key()
    use_key_ring(KeyRing([key]))
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as folder, \
            emulator_server(require_user_start=False, rate_limits=False) as (url, emulator):
        url_db = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        settings = _bench_settings(folder, url_db, url, 1000)
        db = Database.from_url(url_db)
        await upgrade(db.engine)
        users = await _create_users(url, clients)
        await _seed(db, settings, users, 0.0, prompt_key=PROMPT_KEY)
        bot = BotProcess(bot_environment(folder, url_db, url, key, rate_limit_per_second=1000,
                                         rate_limit_per_chat=1000, rate_limit_chat_burst=1000),
                         Path(folder) / "bot.log")
        await asyncio.to_thread(bot.start)
        latencies: list[float] = []
        sent: list[tuple[int, int]] = []
        try:
            async with EmulatorControl(url, connections=clients + 10) as telegram, \
                    contextlib.AsyncExitStack() as stack:
                prompts = await _prompts(telegram, users)
                # Each person on a connection of their own, their client made before the clock
                # starts, so that setting up a hundred clients does not land on the first replies.
                people = [await stack.enter_async_context(EmulatorControl(url, connections=1))
                          for _ in users]
                cpu_before = (bot.cpu_seconds(), cpu_seconds(emulator), time.process_time())
                waited_before = cpu_wait_seconds(bot.pid)
                started = time.perf_counter()
                quota = Quota(updates)
                await asyncio.gather(*(_client(person, user, prompts[user], quota, latencies, sent)
                                       for person, user in zip(people, users, strict=True)))
                elapsed = time.perf_counter() - started
                waited = cpu_wait_seconds(bot.pid) - waited_before
                cpu, emulator_cpu, clients_cpu = (
                    now - before for now, before in zip(
                        (bot.cpu_seconds(), cpu_seconds(emulator), time.process_time()),
                        cpu_before, strict=True))
                stats = await telegram.stats()
        except BaseException:
            print(f"the bot's log ends:\n{bot.log.read_text()[-4000:]}", file=sys.stderr)
            raise
        finally:
            code = await asyncio.to_thread(bot.stop)
        counted = await count_replies(db, sent)
        await db.dispose()
    acknowledgements = sum(stats["delivered"].values()) - clients  # less one prompt each
    return {
        "benchmark": "ingest", "updates": updates, "clients": clients,
        "database": "sqlite" if url_db.startswith("sqlite") else "postgresql",
        "replies_sent": len(sent), **counted,
        "acknowledgements": acknowledgements,
        "acknowledged_twice": max(0, acknowledgements - len(sent)),
        "elapsed_s": round(elapsed, 2),
        "replies_per_s": round(len(sent) / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "bot_cpu_share": round(cpu / elapsed, 2) if elapsed > 0 else 0.0,
        # How long the bot's threads were ready to run but waited for a CPU, a share of the run.
        "bot_waiting_for_cpu_share": round(waited / elapsed, 2) if elapsed > 0 else 0.0,
        # CPU time per reply of each process: the figure that holds on a shared, loaded machine.
        "bot_cpu_ms_per_reply": _per_reply(cpu, sent),
        "emulator_cpu_ms_per_reply": _per_reply(emulator_cpu, sent),
        "clients_cpu_ms_per_reply": _per_reply(clients_cpu, sent),
        "bot_exit_code": code,
    }


def _per_reply(seconds: float, sent: list[tuple[int, int]]) -> float:
    return round(seconds * 1000 / len(sent), 2) if sent else 0.0


def ok(result: dict[str, Any]) -> bool:
    """Nothing lost, nothing stored twice, every reply acknowledged once, the text sealed."""
    return (result["lost"] == 0 and result["stored_twice"] == 0 and result["unexpected"] == 0
            and result["stored"] == result["updates"] and result["without_prompt"] == 0
            and result["acknowledgements"] == result["updates"] and result["sealed"])


def summary(result: dict[str, Any]) -> str:
    return (f"ingest: {result['stored']}/{result['updates']} replies stored from "
            f"{result['clients']} clients on {result['database']} in {result['elapsed_s']} s: "
            f"{result['replies_per_s']}/s (goal 300/s); latency to the acknowledgement p50 "
            f"{result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms (goal < 500 ms); "
            f"lost {result['lost']}, stored twice {result['stored_twice']}, acknowledged twice "
            f"{result['acknowledged_twice']}; text sealed: {'yes' if result['sealed'] else 'NO'}; "
            f"the bot's process used {result['bot_cpu_share']:.0%} of a core (and waited "
            f"for one {result['bot_waiting_for_cpu_share']:.0%} of the time), "
            f"{result['bot_cpu_ms_per_reply']} ms of CPU a reply (the emulator "
            f"{result['emulator_cpu_ms_per_reply']} ms, the simulated clients "
            f"{result['clients_cpu_ms_per_reply']} ms)")
