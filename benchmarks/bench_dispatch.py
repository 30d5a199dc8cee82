"""Dispatch at Telegram's limits: `interlude bench dispatch` at 30 and 300 messages a second,
against the emulator in a process of its own (goal: at least 95% of the limit, no 429s, nothing
lost, nothing doubled). Prints one JSON line and a summary per run. Run with `make bench`.

`BENCH_DATABASE_URL` runs it on PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

RUNS = [(30, 600), (300, 3000)]  # (limit per second, clients): about 10 to 20 s each


def main() -> None:
    for rate, clients in RUNS:
        command = [sys.executable, "-m", "bot.cli", "bench", "dispatch", "--clients", str(clients),
                   "--rate", str(rate), "--json"]
        if os.environ.get("BENCH_DATABASE_URL"):
            command += ["--database-url", os.environ["BENCH_DATABASE_URL"]]
        done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
        result = json.loads(done.stdout)
        print(json.dumps(result))
        from bot.bench import summary

        print(summary(result), flush=True)


if __name__ == "__main__":
    main()
