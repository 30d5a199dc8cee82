"""Planning at scale: 100,000 clients enrolled in the daily evening check-in.

Reports the time to plan a day for all of them and that process's peak memory (goals: under
10 s and 300 MB), the bot's start-up time on that database (goal: under 5 s), and the cost of a
dispatcher claim with 10 due rows against 10,000 (it must grow with the due rows, not with the
100,000 planned). Each measurement runs in a fresh process. Prints one JSON line and a
summary. Run with `make bench`; `BENCH_DATABASE_URL` runs it on PostgreSQL,
`BENCH_CLIENTS` changes the number of clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

ROOT = Path(__file__).resolve().parents[1]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Europe/London", "Asia/Tokyo"]
THERAPISTS = 100
ROWS_PER_INSERT = 5000


def _settings(url: str, folder: str, **extra: Any) -> Any:
    from bot.config import Settings

    return Settings(_env_file=None, data_dir=Path(folder), database_url=url,  # type: ignore[call-arg]
                    prompts_dir=ROOT / "prompts", **extra)


async def seed(url: str, folder: str, clients: int) -> None:
    from bot.db.engine import open_database
    from bot.db.migrate import upgrade
    from bot.db.models import Client, ClientStatus, Enrolment, Therapist
    from bot.services.onboarding import consent_version

    settings = _settings(url, folder)
    db = open_database(settings)  # the run's own key, kept in its folder
    await upgrade(db.engine)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await session.execute(insert(Therapist), [
            {"display_name": f"T{n}", "created_at": now} for n in range(THERAPISTS)])
        therapist_ids = list(await session.scalars(select(Therapist.id)))
        rows = [{"therapist_id": therapist_ids[n % THERAPISTS], "display_name": f"C{n}",
                 "telegram_user_id": 10_000_000 + n, "status": ClientStatus.ACTIVE,
                 "timezone": ZONES[n % len(ZONES)], "quiet_start": "21:30", "quiet_end": "08:00",
                 "consent_version": consent_version(settings), "created_at": now} for n in range(clients)]
        for start in range(0, clients, ROWS_PER_INSERT):
            await session.execute(insert(Client), rows[start:start + ROWS_PER_INSERT])
        client_ids = list(await session.scalars(select(Client.id)))
        enrolments = [{"client_id": client_id, "program_key": "evening-checkin",
                       "starts_at": now - timedelta(hours=1), "created_at": now}
                      for client_id in client_ids]
        for start in range(0, clients, ROWS_PER_INSERT):
            await session.execute(insert(Enrolment), enrolments[start:start + ROWS_PER_INSERT])
    await db.dispose()


async def plan(url: str, folder: str) -> dict[str, Any]:
    from bot.bench import peak_rss_mb
    from bot.clock import SystemClock
    from bot.db.engine import open_database
    from bot.library import load_library
    from bot.scheduling.planner import Planner

    settings = _settings(url, folder, planning_horizon_hours=24)
    db = open_database(settings)
    library = load_library(settings.prompts_dir)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    created = await Planner(db, library, SystemClock(), settings).plan()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    await db.dispose()
    # CPU time (all threads of this process) is the steadier figure on a shared machine.
    return {"planned": created, "plan_day_s": round(seconds, 2), "plan_day_cpu_s": round(cpu, 2),
            "plan_peak_rss_mb": peak_rss_mb()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def ticks(url: str, folder: str) -> dict[str, Any]:
    """Median claim time with 10 and with 10,000 rows due among everything planned."""
    from bot.clock import FakeClock
    from bot.db.engine import open_database
    from bot.db.models import Client, Delivery, DeliveryStatus
    from bot.scheduling.dispatcher import Dispatcher, TickReport

    settings = _settings(url, folder)
    db = open_database(settings)
    async with db.transaction() as session:
        ids = list(await session.scalars(select(Delivery.id).order_by(Delivery.id)))
        later = datetime.now(UTC) + timedelta(days=3)
        await session.execute(update(Delivery).values(due_at=later))
        # Outside anyone's quiet hours, so that every due row is claimed (none postponed).
        await session.execute(update(Client).values(quiet_start="00:00", quiet_end="00:00"))
    now = datetime.now(UTC)
    dispatcher = Dispatcher(db, sender=None, clock=FakeClock(now), settings=settings)  # type: ignore[arg-type]
    result: dict[str, Any] = {"total_rows": len(ids)}
    for due_count in (10, 10_000):
        due_ids = ids[:due_count]
        timings = []
        for _ in range(7):
            async with db.transaction() as session:
                for start in range(0, len(due_ids), ROWS_PER_INSERT):
                    await session.execute(update(Delivery).where(
                        Delivery.id.in_(due_ids[start:start + ROWS_PER_INSERT])).values(
                        due_at=now - timedelta(seconds=30), status=DeliveryStatus.PENDING,
                        claimed_at=None))
            started = time.perf_counter()
            claimed = await dispatcher._claim(TickReport(), limit=settings.dispatch_batch)
            timings.append((time.perf_counter() - started) * 1000)
            assert len(claimed) == min(due_count, settings.dispatch_batch)
        result[f"claim_ms_{due_count}_due"] = round(statistics.median(timings), 1)
    await db.dispose()
    return result


def startup(url: str, folder: str) -> dict[str, Any]:
    """From `interlude run` to 'is running' against the emulator, on the planned database: the
    first start in a new data folder, which trains the crisis classifier and keeps it there, and
    then every later start (the median of three), which loads it."""
    from bot.bench import emulator_process

    with emulator_process() as api:
        env = {**os.environ, "INTERLUDE_DATABASE_URL": url, "INTERLUDE_DATA_DIR": folder,
               "INTERLUDE_TELEGRAM_API_URL": api, "INTERLUDE_PLANNING_HORIZON_HOURS": "24",
               "INTERLUDE_PROMPTS_DIR": str(ROOT / "prompts")}
        first, *later = [_seconds_to_running(env) for _ in range(4)]
    return {"startup_s": _rounded(statistics.median(later) if None not in later else None),
            "startup_first_s": _rounded(first)}


def _seconds_to_running(env: dict[str, str]) -> float | None:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seconds = None
    for line in process.stdout:
        if "is running" in line:
            seconds = time.perf_counter() - started
            break
    process.terminate()
    process.wait(timeout=30)
    return seconds


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None


def _child(phase: str, url: str, folder: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_planning", phase, url, folder],  # noqa: S603
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the {phase} phase failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) == 4:  # one phase, in a fresh process
        phase, url, folder = sys.argv[1:]
        work = {"seed": lambda: seed(url, folder, int(os.environ.get("BENCH_CLIENTS", "100000"))),
                "plan": lambda: plan(url, folder), "ticks": lambda: ticks(url, folder)}
        result = startup(url, folder) if phase == "startup" else asyncio.run(work[phase]()) or {}
        print(json.dumps(result))
        return
    clients = int(os.environ.get("BENCH_CLIENTS", "100000"))
    with tempfile.TemporaryDirectory(prefix="interlude-bench-") as folder:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{folder}/bench.db"
        _child("seed", url, folder)
        result: dict[str, Any] = {"benchmark": "planning", "clients": clients,
                                  "database": "sqlite" if url.startswith("sqlite") else "postgresql"}
        result.update(_child("plan", url, folder))
        result.update(_child("startup", url, folder))
        result.update(_child("ticks", url, folder))
    print(json.dumps(result))
    print(f"planning: a day for {clients:,} clients in {result['plan_day_s']} s "
          f"({result['plan_day_cpu_s']} s of CPU; goal < 10 s), "
          f"peak RSS {result['plan_peak_rss_mb']} MB (goal < 300 MB); bot start-up "
          f"{result['startup_s']} s (goal < 5 s; the first start in a new data folder, which "
          f"trains the crisis classifier, {result['startup_first_s']} s); a dispatcher claim takes "
          f"{result['claim_ms_10_due']} ms with 10 rows due and {result['claim_ms_10000_due']} ms "
          f"with 10,000 due, among {result['total_rows']:,} planned", flush=True)


if __name__ == "__main__":
    main()
