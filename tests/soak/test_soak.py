"""Long reliability scenarios, run by `make soak` (never by `make test`; short versions of each
are in tests/e2e). The bot is `interlude run` in processes of its own, the emulator in another,
as a practice runs them; each scenario prints what it measured and fails loudly if a guarantee
breaks: no prompt or reply lost, nothing stored twice, prompts sent twice only as many as were
in flight at a crash, and no burst of stale prompts after a long sleep.

`INTERLUDE_SOAK_SIZE` changes the number of prompts and replies (2,000); `INTERLUDE_SOAK_SEED`
repeats a run's random moments (each run prints its seed).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FakeClock, SystemClock
from bot.db.models import Client, Delivery, DeliveryStatus
from bot.library import load_library
from bot.scheduling.planner import Planner
from bot.services import couples
from tests.conftest import ROOT
from tests.integration.helpers import active_client
from tests.postgres import PostgresServer
from tests.soak.scene import (
    SEED,
    WORDS_PROMPT,
    Scene,
    Writers,
    acknowledgements,
    prompts_of,
    report,
    scene,
    wait_for,
)

SIZE = int(os.environ.get("INTERLUDE_SOAK_SIZE", "2000"))
LEASE_SECONDS = 5  # a dead process's prompts are taken over after this (60 s in production)
FAST = {"rate_limit_per_second": 1000, "rate_limit_per_chat": 1000, "rate_limit_chat_burst": 1000}


def _duplicates(delivered: dict[int, int], each: int = 1) -> int:
    return sum(max(0, count - each) for count in delivered.values())


async def test_kill_9_during_a_dispatch_five_times(tmp_path: Path) -> None:
    """2,000 prompts due at once at Telegram's 30/s; the bot is killed with SIGKILL at five
    random moments and restarted each time: every prompt arrives, and no more are sent twice
    than were in flight at the kills."""
    rate = 30
    with scene(tmp_path, global_rate=rate, global_burst=rate) as world:
        await world.prepare()
        users = await world.people(SIZE)
        await world.seed(users)
        bot = world.bot(send_lease_seconds=LEASE_SECONDS, rate_limit_per_second=rate)
        marks = sorted(world.random.uniform(0.05, 0.9) * SIZE for _ in range(5))
        kills = []
        started = time.monotonic()
        for mark in marks:
            await asyncio.to_thread(bot.start)
            goal = max(mark, len(world.delivered()) + 20)  # some progress after each restart
            await wait_for(lambda goal=goal: len(world.delivered()) >= goal,
                           within=300, what="prompts to go out before a kill")
            await asyncio.sleep(world.random.uniform(0, 1))
            bot.kill()
            kills.append({"delivered": len(world.delivered()), "in_flight": await world.in_flight()})
        await asyncio.to_thread(bot.start)
        await wait_for(lambda: len(world.delivered()) >= SIZE, within=SIZE / rate * 3 + 120,
                       what="every prompt to arrive")
        elapsed = time.monotonic() - started
        await asyncio.sleep(2 * LEASE_SECONDS)  # anything sent twice arrives by now
        delivered = world.delivered()
        statuses = await world.statuses()
        stats = world.stats()
    duplicates = _duplicates(delivered)
    in_flight = sum(kill["in_flight"] for kill in kills)
    result = {"scenario": "kill_9_during_dispatch", "prompts": SIZE, "rate_limit": rate,
              "seed": SEED, "kills": kills, "lost": SIZE - len(delivered), "sent_twice": duplicates,
              "in_flight_at_kills": in_flight, "responses_429": stats["rate_limited"],
              "elapsed_s": round(elapsed, 1), "statuses": dict(statuses)}
    report(result, f"kill -9 during a dispatch: {len(delivered)}/{SIZE} prompts arrived after "
                   f"{len(kills)} kills; sent twice {duplicates}, in flight at the kills "
                   f"{in_flight} ({', '.join(str(k['in_flight']) for k in kills)}); 429s "
                   f"{stats['rate_limited']}; {elapsed:.0f} s")
    assert result["lost"] == 0, "a prompt was lost"
    assert duplicates <= in_flight, "more prompts were sent twice than were in flight"
    assert statuses == {"sent": SIZE}


async def test_kill_9_during_the_ingestion_of_replies(tmp_path: Path) -> None:
    """100 people send 2,000 replies at a steady pace; the bot is killed with SIGKILL at three
    random moments and restarted: every reply is stored exactly once."""
    with scene(tmp_path, rate_limits=False) as world:
        await world.prepare()
        users = await world.people(100)
        await world.seed(users, prompt_key=WORDS_PROMPT)
        bot = world.bot(**FAST)
        await asyncio.to_thread(bot.start)
        writers = Writers(world.url, await prompts_of(world.url, users), SIZE // 100, per_second=40)
        started = time.monotonic()
        writing = asyncio.create_task(writers.run())
        kills = []
        for mark in sorted(world.random.uniform(0.1, 0.8) * writers.total for _ in range(3)):
            await wait_for(lambda m=mark: _at_least(world.replies_stored(), m), within=300,
                           what="replies to be stored before a kill")
            await asyncio.sleep(world.random.uniform(0, 0.5))
            bot.kill()
            kills.append({"stored": await world.replies_stored(), "sent": len(writers.sent)})
            await asyncio.to_thread(bot.start)
        await writing
        await wait_for(lambda: _at_least(world.replies_stored(), writers.total), within=300,
                       what="every reply to be stored")
        elapsed = time.monotonic() - started
        await asyncio.sleep(2)
        stored = await world.stored_messages()
        thanks = acknowledgements(world, writers.sent)
        world.stop_all()
    expected = Counter(writers.sent)
    lost = sum((expected - stored).values())
    twice = sum(count - 1 for count in stored.values() if count > 1)
    result = {"scenario": "kill_9_during_ingestion", "replies": writers.total, "seed": SEED,
              "kills": kills, "stored": sum(stored.values()), "lost": lost, "stored_twice": twice,
              **thanks, "elapsed_s": round(elapsed, 1)}
    report(result, f"kill -9 during ingestion: {sum(stored.values())}/{writers.total} replies "
                   f"stored after {len(kills)} kills; lost {lost}, stored twice {twice}; thanks "
                   f"missing {thanks['acknowledgements_missing']}, said twice "
                   f"{thanks['acknowledged_twice']}; {elapsed:.0f} s")
    assert lost == 0, "a reply the emulator handed over was lost"
    assert twice == 0, "a reply was stored twice"
    assert not stored - expected


async def _at_least(count: object, target: float) -> bool:
    return await count >= target  # type: ignore[misc,operator]


@pytest.mark.parametrize("processes", [2, 3])
async def test_several_bot_processes_on_one_postgresql(
    tmp_path: Path, postgres: PostgresServer | None, processes: int
) -> None:
    """Two or three `interlude run` processes on one PostgreSQL send 2,000 prompts at a shared
    100/s: none twice, the work shared; then people answer while the process reading the inbox
    is killed: another takes over and every reply is stored once."""
    if postgres is None:
        pytest.fail("PostgreSQL is needed (scripts/ensure-postgres)")
    rate = 100
    database = await postgres.create_database()
    with scene(tmp_path, database, global_rate=rate, global_burst=rate) as world:
        await world.prepare()
        users = await world.people(SIZE)
        await world.seed(users, due_in=3600, prompt_key=WORDS_PROMPT)
        # The soak's short lease: each process keeps two seconds' worth of the shared rate in
        # flight, so with three a claimed prompt may wait six seconds for its turn, longer than
        # the lease; the process holding it renews the lease meanwhile.
        bots = [world.bot(f"bot{n}", rate_limit_per_second=rate, log_level="DEBUG",
                          send_lease_seconds=LEASE_SECONDS) for n in range(processes)]
        for bot in bots:
            await asyncio.to_thread(bot.start)
        await world.make_due(1.0)
        started = time.monotonic()
        await wait_for(lambda: len(world.delivered()) >= SIZE, within=SIZE / rate * 3 + 60,
                       what="every prompt to arrive")
        elapsed = time.monotonic() - started
        await asyncio.sleep(1)
        delivered = world.delivered()
        stats = world.stats()
        shares = [sum(int(n) for n in re.findall(r"sent (\d+) prompts", bot.log.read_text()))
                  for bot in bots]

        # Answers while the process that reads the inbox dies.
        answering = users[:200]
        writers = Writers(world.url, await prompts_of(world.url, answering), 2, per_second=40)
        writing = asyncio.create_task(writers.run())
        await asyncio.sleep(3)
        leader = next(bot for bot in bots if "this process reads the inbox" in bot.log.read_text())
        leader.kill()
        await writing
        await wait_for(lambda: _at_least(world.replies_stored(), writers.total), within=120,
                       what="every reply to be stored after the inbox reader died")
        stored = await world.stored_messages()
        takeover = next(n for n, bot in enumerate(bots)
                        if bot is not leader and "this process reads the inbox" in bot.log.read_text())
    duplicates = _duplicates(delivered)
    expected = Counter(writers.sent)
    lost_replies = sum((expected - stored).values())
    result = {"scenario": "several_processes_postgresql", "processes": processes, "prompts": SIZE,
              "rate_limit": rate, "lost": SIZE - len(delivered), "sent_twice": duplicates,
              "responses_429": stats["rate_limited"], "sent_by_process": shares,
              "achieved_per_s": round(SIZE / elapsed, 1), "replies": writers.total,
              "replies_lost": lost_replies, "inbox_taken_over_by": takeover}
    report(result, f"{processes} processes on PostgreSQL: {len(delivered)}/{SIZE} prompts at "
                   f"{SIZE / elapsed:.0f}/s (limit {rate}), shared {shares}, sent twice "
                   f"{duplicates}, 429s {stats['rate_limited']}; inbox reader killed: "
                   f"{sum(stored.values())}/{writers.total} replies stored once, taken over by "
                   f"process {takeover}")
    assert result["lost"] == 0
    assert duplicates == 0
    assert sum(shares) == SIZE, f"counted {shares}"
    assert all(share > 0 for share in shares), f"not shared: {shares}"
    assert lost_replies == 0
    assert all(count == 1 for count in stored.values())


async def test_a_failing_slow_telegram_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Telegram answers 5% of requests with 502 and adds 100 ms to each: 1,000 prompts arrive
    once each, and 1,000 replies are each stored once."""
    count = SIZE // 2
    with scene(tmp_path, rate_limits=False) as world:
        await world.prepare()
        users = await world.people(count)
        await world.seed(users, due_in=3600, prompt_key=WORDS_PROMPT)
        bot = world.bot(**FAST)
        await asyncio.to_thread(bot.start)
        world.configure(fail_ratio=0.05, latency_ms=100)
        await world.make_due(0.5)
        started = time.monotonic()
        await wait_for(lambda: len(world.delivered()) >= count, within=600,
                       what="every prompt to arrive")
        dispatch_s = time.monotonic() - started
        await asyncio.sleep(2)
        prompts_delivered = world.delivered()
        writers = Writers(world.url, await prompts_of(world.url, users), 1, per_second=50)
        await writers.run()
        await wait_for(lambda: _at_least(world.replies_stored(), writers.total), within=600,
                       what="every reply to be stored")
        await asyncio.sleep(3)
        stored = await world.stored_messages()
        thanks = acknowledgements(world, writers.sent)
        stats = world.stats()
        statuses = await world.statuses()
    expected = Counter(writers.sent)
    result = {"scenario": "failing_slow_telegram", "fail_ratio": 0.05, "latency_ms": 100,
              "prompts": count, "prompts_lost": count - len(prompts_delivered),
              "prompts_sent_twice": _duplicates(prompts_delivered), "replies": writers.total,
              "replies_lost": sum((expected - stored).values()),
              "replies_stored_twice": sum(c - 1 for c in stored.values() if c > 1), **thanks,
              "responses_502": stats["errors"].get("502", 0), "dispatch_s": round(dispatch_s, 1)}
    report(result, f"Telegram failing 5% with 502 and 100 ms slower: {len(prompts_delivered)}/"
                   f"{count} prompts, sent twice {result['prompts_sent_twice']}; "
                   f"{sum(stored.values())}/{writers.total} replies, stored twice "
                   f"{result['replies_stored_twice']}; thanks missing "
                   f"{thanks['acknowledgements_missing']}, said twice {thanks['acknowledged_twice']}; "
                   f"{result['responses_502']} requests failed")
    assert result["prompts_lost"] == 0
    assert result["prompts_sent_twice"] == 0
    assert result["replies_lost"] == 0
    assert result["replies_stored_twice"] == 0
    assert statuses["answered"] == count


async def test_postgresql_restarted_in_the_middle_of_a_run(
    tmp_path: Path, postgres: PostgresServer | None
) -> None:
    """PostgreSQL is restarted twice while 1,000 prompts go out at 50/s and 500 replies come
    in: the bot carries on by itself; nothing lost, nothing stored twice."""
    if postgres is None or not postgres.can_restart:
        pytest.fail("a PostgreSQL server of the tests' own is needed (scripts/ensure-postgres)")
    count, rate = SIZE // 2, 50
    database = await postgres.create_database()
    with scene(tmp_path, database, global_rate=rate, global_burst=rate, chat_rate=50,
               chat_burst=50) as world:
        await world.prepare()
        users = await world.people(count)
        await world.seed(users, due_in=3600, prompt_key=WORDS_PROMPT)
        bot = world.bot(rate_limit_per_second=rate)
        await asyncio.to_thread(bot.start)
        answering = users[:100]
        await world.make_due(0.5)
        started = time.monotonic()
        prompts = await prompts_of(world.url, answering)
        writers = Writers(world.url, prompts, 5, per_second=25)
        writing = asyncio.create_task(writers.run())
        restarts = []
        for at in (4.0, 12.0):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            restarts.append({"at_s": round(time.monotonic() - started, 1),
                             "delivered": len(world.delivered())})
            await asyncio.to_thread(postgres.restart)
        await writing
        await wait_for(lambda: sum(1 for c in world.delivered().values() if c) >= count,
                       within=300, what="every prompt to arrive")
        await wait_for(lambda: _at_least(world.replies_stored(), writers.total), within=300,
                       what="every reply to be stored")
        elapsed = time.monotonic() - started
        await asyncio.sleep(3)
        alive = bot.process is not None and bot.process.poll() is None
        stored = await world.stored_messages()
        delivered = world.delivered()
        thanks = acknowledgements(world, writers.sent)
        async with world.db.transaction() as session:
            sent_rows = Counter(str(s.value) for s in await session.scalars(select(Delivery.status)))
    expected = Counter(writers.sent)
    replied = Counter(user for user, _ in writers.sent)
    # Each chat holds its prompt and one thanks per reply; anything more was sent twice.
    extra = sum(max(0, delivered.get(user, 0) - 1 - replied[user]) for user in users)
    result = {"scenario": "postgresql_restarted", "prompts": count, "rate_limit": rate,
              "restarts": restarts, "bot_still_running": alive,
              "prompts_lost": sum(1 for user in users if not delivered.get(user)),
              "messages_sent_twice": extra, "replies": writers.total,
              "replies_lost": sum((expected - stored).values()),
              "replies_stored_twice": sum(c - 1 for c in stored.values() if c > 1), **thanks,
              "statuses": dict(sent_rows), "elapsed_s": round(elapsed, 1)}
    report(result, f"PostgreSQL restarted twice mid-run: bot still running {alive}; "
                   f"{count - result['prompts_lost']}/{count} prompts; {sum(stored.values())}/"
                   f"{writers.total} replies, lost {result['replies_lost']}, stored twice "
                   f"{result['replies_stored_twice']}; thanks missing "
                   f"{thanks['acknowledgements_missing']}, messages sent twice {extra}; "
                   f"{elapsed:.0f} s")
    assert alive, "the bot process ended"
    assert result["prompts_lost"] == 0
    assert result["replies_lost"] == 0
    assert result["replies_stored_twice"] == 0
    assert sent_rows.get("pending", 0) == 0
    assert sent_rows.get("sending", 0) == 0


async def test_six_hours_asleep_then_catch_up_follows_the_policy(tmp_path: Path) -> None:
    """The machine sleeps six hours (the planner ran just before; the bot starts six hours
    later, on the real clock): prompts due more than the grace (2 h) ago are marked missed and
    never sent, those due within it go, and so do partners' notices held during the sleep."""
    library = load_library(ROOT / "prompts")
    with scene(tmp_path, global_rate=30, global_burst=30) as world:
        await world.prepare()
        asleep_at = SystemClock().now() - timedelta(hours=6)
        clock = FakeClock(asleep_at)
        users = await world.people(240)
        prompted, noticed = users[:216], users[216:]
        therapist = None
        # Nine clients in each of 24 whole-hour zones, in the daily 20:00 check-in: whatever the
        # hour, some check-ins fell due in every hour of the sleep.
        for n, user in enumerate(prompted):
            offset = n % 24 - 11
            zone = f"Etc/GMT{offset:+d}" if offset else "Etc/GMT"
            client_id = await active_client(world.db, clock, world.settings, library,
                                            program="evening-checkin", zone=zone,
                                            telegram_id=user, name=f"C{n}", therapist_id=therapist)
            therapist = therapist or await _therapist_of(world, client_id)
            await _no_quiet_hours(world, client_id)
        # Partners' news queued just before the sleep, held by quiet hours that ended during it.
        start, end = (asleep_at - timedelta(hours=1)), (asleep_at + timedelta(hours=2))
        for n, user in enumerate(noticed):
            client_id = await active_client(world.db, clock, world.settings, library, program=None,
                                            zone="Etc/GMT", telegram_id=user, name=f"N{n}",
                                            therapist_id=therapist)
            async with world.db.transaction() as session:
                client = await session.get(Client, client_id)
                assert client is not None
                client.quiet_start, client.quiet_end = f"{start:%H:%M}", f"{end:%H:%M}"
                await couples.notice(session, client, "Your partner shared an answer with you.",
                                     key=f"soak:{user}", clock=clock)
        await Planner(world.db, library, clock, world.settings).plan()

        bot = world.bot()
        await asyncio.to_thread(bot.start)
        woke_at = SystemClock().now()

        async def decided() -> bool:
            async with world.db.transaction() as session:
                return await session.scalar(select(Delivery.id).where(
                    Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                    Delivery.due_at <= woke_at)) is None

        await wait_for(decided, within=120, what="every prompt due during the sleep to be decided")
        await asyncio.sleep(3)  # a burst would show by now
        delivered = world.delivered()
        async with world.db.transaction() as session:
            rows = (await session.execute(select(Client.telegram_user_id, Delivery.due_at,
                                                 Delivery.status, Delivery.prompt_key)
                                          .join(Client, Client.id == Delivery.client_id))).all()
    grace, margin = world.settings.grace, timedelta(seconds=90)
    stale = [r for r in rows if r.prompt_key != couples.NOTICE_KEY and r.due_at < woke_at - grace - margin]
    fresh = [r for r in rows if r.prompt_key != couples.NOTICE_KEY
             and woke_at - grace + margin < r.due_at <= woke_at]
    later = [r for r in rows if r.due_at > woke_at + margin]
    notices = [r for r in rows if r.prompt_key == couples.NOTICE_KEY]
    stale_sent = [r for r in stale
                  if delivered.get(r.telegram_user_id) or r.status is not DeliveryStatus.MISSED]
    fresh_unsent = [r for r in fresh if r.status is not DeliveryStatus.SENT]
    later_sent = [r for r in later if r.status is not DeliveryStatus.PENDING]
    notices_unsent = [r for r in notices if r.status is not DeliveryStatus.NOTIFIED]
    result = {"scenario": "six_hours_asleep", "clients": len(users),
              "grace_h": grace.total_seconds() / 3600, "due_during_sleep_beyond_grace": len(stale),
              "marked_missed_not_sent": len(stale) - len(stale_sent),
              "stale_sent": len(stale_sent), "due_within_grace": len(fresh),
              "within_grace_sent": len(fresh) - len(fresh_unsent), "notices": len(notices),
              "notices_sent": len(notices) - len(notices_unsent), "sent_early": len(later_sent),
              "messages_after_waking": sum(delivered.values())}
    report(result, f"six hours asleep: {len(stale)} prompts fell due more than 2 h before waking: "
                   f"{len(stale) - len(stale_sent)} marked missed, {len(stale_sent)} sent; "
                   f"{len(fresh) - len(fresh_unsent)}/{len(fresh)} due within the grace sent; "
                   f"{len(notices) - len(notices_unsent)}/{len(notices)} partners' notices sent; "
                   f"{sum(delivered.values())} messages in all after waking")
    assert stale, "no prompt fell due beyond the grace; the test proves nothing"
    assert fresh, "no prompt fell due within the grace; the test proves nothing"
    assert not stale_sent, "a stale prompt was sent after the sleep"
    assert not fresh_unsent
    assert not notices_unsent
    assert not later_sent
    assert sum(delivered.values()) == len(fresh) + len(notices), "more was sent than the policy allows"


async def _therapist_of(world: Scene, client_id: int) -> int:
    async with world.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return client.therapist_id


async def _no_quiet_hours(world: Scene, client_id: int) -> None:
    async with world.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        client.quiet_start = client.quiet_end = "00:00"
