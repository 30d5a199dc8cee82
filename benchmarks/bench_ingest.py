"""The inbound path under load: `interlude bench ingest`, 100 simulated clients answering their
prompts, each waiting for the bot's thanks before the next reply, against the bot as
`interlude run` and the emulator, each in a process of its own (goal: at least 300 replies a
second on SQLite, p99 from a message to its thanks under 500 ms; every reply stored once).
Prints one JSON line and a summary. Run with `make bench`.

`BENCH_UPDATES` changes the number of replies (3,000); `BENCH_DATABASE_URL` runs it on
PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bot.bench_ingest import summary


def main() -> None:
    command = [sys.executable, "-m", "bot.cli", "bench", "ingest", "--updates",
               os.environ.get("BENCH_UPDATES", "3000"), "--clients", "100", "--json"]
    if os.environ.get("BENCH_DATABASE_URL"):
        command += ["--database-url", os.environ["BENCH_DATABASE_URL"]]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if not done.stdout.strip():
        sys.exit(f"bench ingest failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    print(json.dumps(result))
    print(summary(result), flush=True)
    if done.returncode != 0:
        sys.exit(done.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
