"""The outbound pipeline against its ceiling and against the naive design, limits off.

2. Raw pipeline: messages per second from due row to recorded send, against a bare loop of
   python-telegram-bot `send_message` calls to the same emulator (the ceiling for this client
   library on this machine); goal 0.8 of it on one process. The bare loop runs twice: over the
   library's own HTTPX request (the issue's ceiling) and over the aiohttp request the bot uses
   (what the pipeline costs beyond sending). Then one and two bot processes on PostgreSQL (a
   throwaway server, as the tests start one), where two should beat one.
3. The naive design (one JobQueue job per client, a commit per send): the ratio of elapsed
   times and of peak memory, each design in a process of its own.

Prints one JSON line per comparison and a summary. Run with `make bench`; BENCH_CLIENTS
changes the number of prompts (3,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import httpx

from bot import bench

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "3000"))
OUR_CAP = 1000  # the highest overall rate the bot can be configured for (paid broadcasts)
# Limits off on the bot's side too: a pace no run on this machine reaches (against Telegram the
# bot refuses more than 1,000/s), so the pipeline, and not its pace, is what is measured, and
# two processes on PostgreSQL are not held to one's share of a 1,000/s cap.
UNPACED = 20_000


def raw_pipeline() -> dict[str, Any]:
    bare = asyncio.run(bench.bare_loop(CLIENTS))
    bare_aiohttp = asyncio.run(bench.bare_loop(CLIENTS, aiohttp=True))
    ours = asyncio.run(bench.dispatch(CLIENTS, UNPACED, limits=False))
    result: dict[str, Any] = {
        "benchmark": "raw_pipeline", "clients": CLIENTS, "bare_loop_per_s": bare["per_s"],
        "bare_loop_aiohttp_per_s": bare_aiohttp["per_s"],
        "sqlite_one_process_per_s": ours["achieved_per_s"],
        "ratio_to_bare_loop": round(ours["achieved_per_s"] / bare["per_s"], 3),
        "ratio_to_bare_aiohttp_loop": round(ours["achieved_per_s"] / bare_aiohttp["per_s"], 3),
        "bot_cpu_ms_per_prompt": ours["bot_cpu_ms_per_prompt"],
        "lost": ours["lost"], "duplicates": ours["duplicates"],
    }
    try:
        from tests.postgres import PostgresServer, PostgresUnavailable
    except ImportError:
        return result
    server = PostgresServer()
    try:
        server.start()
        for processes in (1, 2):
            url = asyncio.run(server.create_database(migrated=False))
            run = asyncio.run(bench.dispatch(CLIENTS, UNPACED, url, limits=False,
                                             processes=processes))
            result[f"postgresql_{processes}_process_per_s"] = run["achieved_per_s"]
            result[f"postgresql_{processes}_process_sent_by_process"] = run["sent_by_process"]
            result["lost"] += run["lost"]
            result["duplicates"] += run["duplicates"]
    except PostgresUnavailable as error:
        result["postgresql"] = f"not measured: {error}"
    finally:
        server.stop()
    return result


def naive_design() -> dict[str, Any]:
    designs: dict[str, dict[str, Any]] = {}
    with bench.emulator_process(rate_limits=False, require_user_start=False) as url:
        for design in ("ours", "naive"):
            httpx.post(f"{url}/emulator/reset", timeout=10).raise_for_status()
            httpx.post(f"{url}/emulator/config", json={"rate_limits": False,
                                                       "require_user_start": False}, timeout=10)
            done = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "bot.bench", design, url, str(CLIENTS), str(OUR_CAP)],
                capture_output=True, text=True, check=True)
            designs[design] = json.loads(done.stdout.strip().splitlines()[-1])
            stats = httpx.get(f"{url}/emulator/stats", timeout=10).json()
            designs[design]["delivered"] = len(stats["delivered"])
    ours, naive = designs["ours"], designs["naive"]
    return {
        "benchmark": "naive_design", "clients": CLIENTS, "ours": ours, "naive": naive,
        "elapsed_ratio_naive_to_ours": round(naive["elapsed_s"] / ours["elapsed_s"], 2)
        if naive["elapsed_s"] and ours["elapsed_s"] else None,
        "memory_ratio_naive_to_ours": round(naive["peak_rss_mb"] / ours["peak_rss_mb"], 2),
    }


def main() -> None:
    raw = raw_pipeline()
    print(json.dumps(raw))
    two = raw.get("postgresql_2_process_per_s")
    print(f"raw pipeline (limits off, {CLIENTS} prompts): bare PTB loop {raw['bare_loop_per_s']}/s "
          f"(over aiohttp {raw['bare_loop_aiohttp_per_s']}/s); ours on SQLite "
          f"{raw['sqlite_one_process_per_s']}/s = {raw['ratio_to_bare_loop']:.0%} of it (goal 80%), "
          f"{raw['ratio_to_bare_aiohttp_loop']:.0%} of the aiohttp loop"
          + (f"; PostgreSQL one process {raw.get('postgresql_1_process_per_s')}/s, two {two}/s"
             if two else "")
          + f"; lost {raw['lost']}, duplicates {raw['duplicates']}", flush=True)
    naive = naive_design()
    print(json.dumps(naive))
    print(f"naive design (a job per client, a commit per send), {CLIENTS} prompts: ours took "
          f"{naive['ours']['elapsed_s']} s at {naive['ours']['peak_rss_mb']} MB, naive "
          f"{naive['naive']['elapsed_s']} s at {naive['naive']['peak_rss_mb']} MB (elapsed x"
          f"{naive['elapsed_ratio_naive_to_ours']}, memory x{naive['memory_ratio_naive_to_ours']}); "
          f"delivered {naive['ours']['delivered']} and {naive['naive']['delivered']} (naive: "
          f"{naive['naive']['skipped_as_misfires']} jobs skipped by APScheduler as misfires)", flush=True)


if __name__ == "__main__":
    main()
