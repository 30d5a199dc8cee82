"""Benchmarks of the outbound path (`interlude bench ...`), against the emulator in a process
of its own, with Telegram's limits on.

`dispatch`: N clients with a prompt due at the same moment and a Telegram limit of L messages
a second; the real dispatcher, rate limiter and sender deliver them. Reported: delivered, lost,
duplicates, 429s, elapsed, the achieved rate as a share of L, and lateness (sent minus due).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from bot.clock import SystemClock
from bot.config import Settings
from bot.db.engine import Database, open_database
from bot.db.migrate import upgrade
from bot.db.models import Client, ClientStatus, Delivery, DeliveryStatus, Therapist
from bot.library import load_library
from bot.scheduling.planner import prompt_snapshot
from bot.services.onboarding import consent_version

PROMPT_KEY = "checkin.evening"
THERAPISTS = 10
LEAD_SECONDS = 1.0  # between the bot being up and the prompts falling due
FAR_AHEAD_SECONDS = 3600.0  # where prompts wait until the bot is up
# The trained crisis classifier, kept between runs as a practice's data folder keeps it: each
# run's bot starts as on any day but the first, and its memory is the running bot's, not
# that of training (the planning benchmark times the first start on its own).
CLASSIFIER_CACHE = Path(tempfile.gettempdir()) / "interlude-bench-classifier"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (Linux), or 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_wait_seconds(pid: int) -> float:
    """Time a process's threads have spent so far ready to run but waiting for a CPU (Linux
    schedstat), or 0: on a shared machine, what the others took from it."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


@contextlib.contextmanager
def emulator_process(**config: Any) -> Iterator[str]:
    """`interlude emulator` in a process of its own, configured; yields its URL."""
    with emulator_server(**config) as (url, _pid):
        yield url


@contextlib.contextmanager
def emulator_server(**config: Any) -> Iterator[tuple[str, int]]:
    """`interlude emulator` in a process of its own, configured; yields its URL and its pid."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "emulator", "--port", str(port)],  # noqa: S603
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/emulator/stats", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)
        httpx.post(f"{url}/emulator/config", json=config, timeout=10).raise_for_status()
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # long polls still open: no need to be gentle
            process.kill()
            process.wait(timeout=10)


async def _create_users(url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(n: int) -> int:
            async with semaphore:
                response = await client.post("/emulator/users", json={"first_name": f"C{n}"})
                return int(response.json()["id"])

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _seed(db: Database, settings: Settings, users: list[int], due_in: float,
                prompt_key: str = PROMPT_KEY) -> None:
    """Clients with consent and no quiet hours, each with one prompt due at the same moment."""
    library = load_library(settings.prompts_dir)
    snapshot = prompt_snapshot(library.prompts[prompt_key])
    now = SystemClock().now()
    due = now + timedelta(seconds=due_in)
    async with db.transaction() as session:
        therapist_ids = [
            (await session.execute(insert(Therapist).values(display_name=f"T{n}", created_at=now)
                                   .returning(Therapist.id))).scalar_one()
            for n in range(THERAPISTS)]
        client_rows = [{"therapist_id": therapist_ids[n % THERAPISTS], "display_name": f"C{n}",
                        "telegram_user_id": user, "status": ClientStatus.ACTIVE,
                        "timezone": "Europe/Berlin", "quiet_start": "00:00", "quiet_end": "00:00",
                        "consent_version": consent_version(settings),
                        "created_at": now} for n, user in enumerate(users)]
        for start in range(0, len(client_rows), 1000):
            await session.execute(insert(Client), client_rows[start:start + 1000])
        client_ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
        rows = [{"client_id": client_id, "prompt_key": prompt_key, "prompt": snapshot,
                 "scheduled_for": due, "due_at": due, "expires_at": due + settings.expiry,
                 "status": DeliveryStatus.PENDING, "attempts": 0, "progress": 0}
                for client_id in client_ids]
        for start in range(0, len(rows), 1000):
            await session.execute(insert(Delivery), rows[start:start + 1000])


def bot_environment(folder: str, database_url: str, api_url: str, key: str,
                    **settings: object) -> dict[str, str]:
    """The environment of an `interlude run` process for a benchmark or a soak test: its own
    folder, database, emulator and key, no dashboard; `settings` by their names in Settings."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("INTERLUDE_")}
    environment.update({
        "INTERLUDE_DATA_DIR": folder, "INTERLUDE_DATABASE_URL": database_url,
        "INTERLUDE_TELEGRAM_API_URL": api_url, "INTERLUDE_ENCRYPTION_KEYS": key,
        "INTERLUDE_PROMPTS_DIR": str(Path(os.environ.get("INTERLUDE_PROMPTS_DIR", "prompts"))
                                     .resolve()),
        "INTERLUDE_WEB_PORT": "0", "INTERLUDE_DISPATCH_INTERVAL_SECONDS": "0.2",
        "INTERLUDE_CLASSIFIER_CACHE_DIR": str(CLASSIFIER_CACHE),
    })
    environment.update({f"INTERLUDE_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


class BotProcess:
    """`interlude run` in a process of its own, its log in a file; started, stopped or killed."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.environment = environment
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 90.0) -> None:
        """Start it and wait until it says it is running (it has started polling)."""
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"], env=self.environment,
                cwd=self.environment["INTERLUDE_DATA_DIR"], stdout=output,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + within
        runs = self.log.read_text().count("is running")
        while self.log.read_text().count("is running") <= runs:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start; its log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (Linux), or 0."""
        return cpu_seconds(self.pid)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def _bench_settings(folder: str, database_url: str, api_url: str, rate: float) -> Settings:
    return Settings(_env_file=None, data_dir=Path(folder),  # type: ignore[call-arg]
                    database_url=database_url, telegram_api_url=api_url,
                    rate_limit_per_second=rate, dispatch_interval_seconds=0.2,
                    classifier_cache_dir=CLASSIFIER_CACHE,
                    prompts_dir=Path(os.environ.get("INTERLUDE_PROMPTS_DIR", "prompts")))


async def _left(db: Database) -> bool:
    async with db.transaction() as session:
        return await session.scalar(select(Delivery.id).where(
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING))).limit(1)) is not None


async def make_due(db: Database, due_in: float) -> None:
    """Every prompt due `due_in` seconds from now, once the bot processes are up."""
    due = SystemClock().now() + timedelta(seconds=due_in)
    async with db.transaction() as session:
        await session.execute(update(Delivery).values(scheduled_for=due, due_at=due))


async def work(settings: Settings, within: float, *,
               due_in: float | None = None) -> tuple[int, float]:
    """One bot process's dispatcher, running until nothing is left to send; returns its sends
    and the CPU seconds this process spent meanwhile. With `due_in`, the prompts are made due
    that long after this process has started; otherwise it says "ready" and waits for another
    process to do so."""
    from bot.app import build_runtime
    from bot.runner import freeze_startup_heap

    db = open_database(settings)  # the run's own key, in its folder, as the demo keeps one
    runtime = build_runtime(settings, db, load_library(settings.prompts_dir), SystemClock())
    await runtime.start(poll=False, jobs=False)
    freeze_startup_heap()  # as `interlude run` does
    if due_in is not None:
        await make_due(db, due_in)
    else:
        print("ready", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    started, cpu_started = loop.time(), time.process_time()
    task = asyncio.create_task(runtime.dispatcher.run(stopping))
    while loop.time() - started < within:
        await asyncio.sleep(0.25)
        if not await _left(db):
            break
    stopping.set()
    await task
    cpu = time.process_time() - cpu_started
    await runtime.stop()
    await db.dispose()
    return runtime.dispatcher.sent_total, cpu


async def dispatch(clients: int, rate: float, database_url: str | None = None,
                   within: float | None = None, *, limits: bool = True,
                   processes: int = 1) -> dict[str, Any]:
    """Run the dispatch benchmark once; returns its figures. With `processes` above one, that
    many bot processes share the work (PostgreSQL)."""
    emulator_limits = {"global_rate": rate, "global_burst": max(1, int(rate))} if limits \
        else {"rate_limits": False}
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as folder, \
            emulator_server(require_user_start=False, **emulator_limits) as (url, emulator):
        url_db = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        settings = _bench_settings(folder, url_db, url, rate)
        db = open_database(settings)
        await upgrade(db.engine)
        users = await _create_users(url, clients)
        await _seed(db, settings, users, FAR_AHEAD_SECONDS)
        limit = within or clients / rate * 3 + 30
        emulator_cpu = cpu_seconds(emulator)
        if processes == 1:
            runs = [await work(settings, limit, due_in=LEAD_SECONDS)]
        else:
            env = {**os.environ, "INTERLUDE_DATABASE_URL": url_db, "INTERLUDE_TELEGRAM_API_URL": url,
                   "INTERLUDE_RATE_LIMIT_PER_SECOND": str(rate), "INTERLUDE_DATA_DIR": folder}
            workers = [await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.bench", "work", str(limit), env=env,
                stdout=subprocess.PIPE) for _ in range(processes)]
            for worker in workers:
                assert worker.stdout is not None
                await worker.stdout.readline()  # "ready"
            await make_due(db, LEAD_SECONDS)
            runs = []
            for worker in workers:
                sent, cpu = (await worker.communicate())[0].decode().split()[-2:]
                runs.append((int(sent), float(cpu)))
        emulator_cpu = cpu_seconds(emulator) - emulator_cpu
        shares = [sent for sent, _ in runs]
        bot_cpu = sum(cpu for _, cpu in runs)
        async with db.transaction() as session:
            rows = (await session.execute(select(Delivery.due_at, Delivery.sent_at))).all()
        await db.dispose()
        async with httpx.AsyncClient(timeout=10) as client:
            stats = (await client.get(f"{url}/emulator/stats")).json()

    delivered_counts = stats["delivered"]
    delivered = len(delivered_counts)
    sent = [row for row in rows if row.sent_at is not None]
    lateness = [(row.sent_at - row.due_at).total_seconds() for row in sent]
    due = min(row.due_at for row in rows)
    last = max((row.sent_at for row in sent), default=due)
    elapsed = (last - due).total_seconds()
    achieved = delivered / elapsed if elapsed > 0 else 0.0
    return {
        "benchmark": "dispatch", "clients": clients, "rate_limit": rate, "limits": limits,
        "database": "sqlite" if url_db.startswith("sqlite") else "postgresql",
        "processes": processes, "sent_by_process": shares,
        "delivered": delivered, "lost": clients - delivered,
        "duplicates": sum(count - 1 for count in delivered_counts.values()),
        "responses_429": stats["rate_limited"], "elapsed_s": round(elapsed, 2),
        "achieved_per_s": round(achieved, 1), "achieved_share_of_limit": round(achieved / rate, 3),
        "lateness_p50_s": round(_percentile(lateness, 0.5), 2),
        "lateness_p99_s": round(_percentile(lateness, 0.99), 2),
        # CPU per delivered prompt: steadier than rates on a shared machine.
        "bot_cpu_ms_per_prompt": round(bot_cpu * 1000 / max(delivered, 1), 2),
        "emulator_cpu_ms_per_prompt": round(emulator_cpu * 1000 / max(delivered, 1), 2),
    }


async def bare_loop(clients: int, concurrency: int = 64, *, aiohttp: bool = False) -> dict[str, Any]:
    """The ceiling: python-telegram-bot `send_message` calls in a plain loop, limits off, the
    same message and the same number of connections the bot uses; over the library's own HTTPX
    request, or with `aiohttp` over the request the bot uses."""
    from telegram import Bot

    from bot.app import DEMO_TOKEN
    from bot.handlers.keyboards import prompt_message

    library = load_library(Path(os.environ.get("INTERLUDE_PROMPTS_DIR", "prompts")))
    rendered = prompt_message(1, prompt_snapshot(library.prompts[PROMPT_KEY]), None)
    with emulator_process(rate_limits=False, require_user_start=False) as url:
        users = await _create_users(url, clients)
        from telegram.request import BaseRequest, HTTPXRequest

        from bot.scheduling.http import AiohttpRequest

        request: BaseRequest = (AiohttpRequest(concurrency) if aiohttp
                                else HTTPXRequest(connection_pool_size=concurrency))
        bot = Bot(DEMO_TOKEN, base_url=f"{url}/bot", request=request)
        semaphore = asyncio.Semaphore(concurrency)

        async def send(chat: int) -> None:
            async with semaphore:
                await bot.send_message(chat, rendered.text, reply_markup=rendered.keyboard)

        async with bot:
            started = time.perf_counter()
            await asyncio.gather(*(send(user) for user in users))
            elapsed = time.perf_counter() - started
    return {"clients": clients, "elapsed_s": round(elapsed, 2),
            "per_s": round(clients / elapsed, 1)}


def summary(result: dict[str, Any]) -> str:
    return (f"dispatch: {result['delivered']}/{result['clients']} delivered at a limit of "
            f"{result['rate_limit']:g}/s on {result['database']} in {result['elapsed_s']} s: "
            f"{result['achieved_per_s']}/s = {result['achieved_share_of_limit']:.0%} of the limit "
            f"(goal 95%); lost {result['lost']}, duplicates {result['duplicates']}, "
            f"429s {result['responses_429']}; lateness p50 {result['lateness_p50_s']} s, "
            f"p99 {result['lateness_p99_s']} s; CPU per prompt: bot "
            f"{result['bot_cpu_ms_per_prompt']} ms, emulator {result['emulator_cpu_ms_per_prompt']} ms")


def peak_rss_mb() -> float:
    """This process's peak memory (resident), in MB.

    From /proc (VmHWM) where there is one: getrusage's ru_maxrss carries over, through fork and
    exec, the peak of the process that started this one, so a benchmark's worker started by a
    big parent would report the parent's peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    [kilobytes] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(int(kilobytes) / 1024, 1)


async def variant(name: str, api_url: str, clients: int, rate: float) -> dict[str, Any]:
    """One design, in this process (for its own peak memory): `ours` (the bot's dispatcher)
    or `naive` (one JobQueue job per client, a database commit per send, no rate limiter)."""
    missed: list[int] = []  # jobs APScheduler skipped for starting too late (naive design)
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as folder:
        url_db = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        settings = _bench_settings(folder, url_db, api_url, rate)
        db = open_database(settings)
        await upgrade(db.engine)
        users = await _create_users(api_url, clients)
        await _seed(db, settings, users, FAR_AHEAD_SECONDS)
        if name == "ours":
            await work(settings, clients / rate * 3 + 60, due_in=LEAD_SECONDS)
        else:
            await make_due(db, LEAD_SECONDS + 1)  # the jobs are scheduled meanwhile
            await _naive(db, settings, api_url, clients, missed)
        async with db.transaction() as session:
            rows = (await session.execute(select(Delivery.due_at, Delivery.sent_at))).all()
        await db.dispose()
    sent = [row.sent_at for row in rows if row.sent_at is not None]
    due = min(row.due_at for row in rows)
    elapsed = (max(sent) - due).total_seconds() if sent else None
    return {"design": name, "sent": len(sent), "elapsed_s": round(elapsed, 2) if elapsed else None,
            "peak_rss_mb": peak_rss_mb(), "skipped_as_misfires": len(missed)}


async def _naive(db: Database, settings: Settings, api_url: str, clients: int,
                 missed: list[int]) -> None:
    """What people write first: a JobQueue job per client at its due time, each sending and
    committing on its own."""
    from telegram.ext import ApplicationBuilder, ContextTypes

    from bot.app import DEMO_TOKEN
    from bot.handlers.keyboards import prompt_message

    application = (ApplicationBuilder().token(DEMO_TOKEN).base_url(f"{api_url}/bot")
                   .updater(None).connection_pool_size(64).build())

    async def send_one(context: ContextTypes.DEFAULT_TYPE) -> None:
        delivery_id, chat_id, prompt = context.job.data  # type: ignore[union-attr,misc]
        rendered = prompt_message(delivery_id, prompt, None)
        message = await context.bot.send_message(chat_id, rendered.text,
                                                 reply_markup=rendered.keyboard)
        async with db.transaction() as session:
            delivery = await session.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.status, delivery.sent_at = DeliveryStatus.SENT, SystemClock().now()
            delivery.telegram_message_id = message.message_id

    async with db.transaction() as session:
        due = (await session.execute(select(Delivery, Client).join(Client))).all()
    async with application:
        await application.start()
        queue = application.job_queue
        assert queue is not None
        from apscheduler.events import EVENT_JOB_MISSED

        def skipped(_event: object) -> None:
            missed.append(1)

        queue.scheduler.add_listener(skipped, EVENT_JOB_MISSED)
        for delivery, client in due:
            queue.run_once(send_one, when=delivery.due_at,
                           data=(delivery.id, client.telegram_user_id, delivery.prompt))
        deadline = time.monotonic() + LEAD_SECONDS + clients / 50 + 60
        while time.monotonic() < deadline and await _left(db):
            await asyncio.sleep(0.25)
            if not queue.jobs():  # every job ran or was skipped as a misfire: nothing more comes
                await asyncio.sleep(1)
                break
        await application.stop()


if __name__ == "__main__":  # a worker process of a several-process run: `python -m bot.bench work`
    from bot.logs import quiet_library_loggers

    quiet_library_loggers()
    if sys.argv[1:2] == ["work"]:
        print(*asyncio.run(work(Settings(), float(sys.argv[2]))))
    elif sys.argv[1:2] in (["ours"], ["naive"]):  # python -m bot.bench DESIGN API CLIENTS RATE
        import json

        print(json.dumps(asyncio.run(variant(sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                             float(sys.argv[4])))))
