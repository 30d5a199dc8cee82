"""How long crisis screening takes per message (budget: 20 ms), over every labelled message.

Prints one JSON line and a summary. Run with `make bench`.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import yaml

from bot.safety.screening import Screener

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5


def main() -> None:
    started = time.perf_counter()
    screener = Screener.from_file(ROOT / "prompts" / "safety.yaml")
    training_seconds = time.perf_counter() - started
    paths = [*sorted((ROOT / "prompts" / "safety-examples").glob("*.yaml")),
             ROOT / "tests" / "safety" / "crisis_messages_final.yaml"]
    texts = [m["text"] for path in paths
             for m in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]]
    texts.append("a very long reflection " * 180)  # near Telegram's 4096 characters
    timings = []
    for _ in range(ROUNDS):
        for text in texts:
            start = time.perf_counter()
            screener.screen(text)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    result = {
        "benchmark": "crisis_screening", "messages": len(texts), "rounds": ROUNDS,
        "median_ms": round(statistics.median(timings), 3),
        "p99_ms": round(timings[int(len(timings) * 0.99)], 3),
        "max_ms": round(timings[-1], 3), "budget_ms": 20,
        "training_s": round(training_seconds, 2),
    }
    print(json.dumps(result))
    print(f"crisis screening: median {result['median_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms per message over {len(timings)} screenings (budget 20 ms); "
          f"training at start-up {result['training_s']} s")


if __name__ == "__main__":
    main()
