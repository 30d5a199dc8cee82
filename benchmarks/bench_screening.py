"""How long crisis screening takes per message (budget: 20 ms), and what it adds to start-up.

Over every labelled message: the example sets and the evaluation sets in tests/safety. Start-up
is timed twice: with an empty cache (the classifier is trained, as at the first start after its
examples change) and with the classifier in the cache (every other start), each in a fresh
process so that imports and loading the sentence encoder's weights count.
Prints one JSON line and a summary. Run with `make bench`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bot.safety.screening import Screener

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
START = """
import time
started = time.perf_counter()
from pathlib import Path
from bot.safety.screening import Screener
Screener.from_file(Path({rules!r}), Path({cache!r})).screen("warm")
print(time.perf_counter() - started)
"""


def start_up_seconds(cache: Path) -> float:
    code = START.format(rules=str(ROOT / "prompts" / "safety.yaml"), cache=str(cache))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,  # noqa: S603 - our own code
                         cwd=ROOT).stdout
    return float(out.split()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        training_seconds = start_up_seconds(Path(cache))
        start_up = sorted(start_up_seconds(Path(cache)) for _ in range(3))
    screener = Screener.from_file(ROOT / "prompts" / "safety.yaml")
    paths = [*sorted((ROOT / "prompts" / "safety-examples").glob("*.yaml")),
             *sorted((ROOT / "tests" / "safety").glob("*.yaml"))]
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
        "start_up_trained_s": round(training_seconds, 2),
        "start_up_cached_s": round(statistics.median(start_up), 2),
    }
    print(json.dumps(result))
    print(f"crisis screening: median {result['median_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms per message over {len(timings)} screenings (budget 20 ms); "
          f"start-up {result['start_up_cached_s']} s with the classifier cached, "
          f"{result['start_up_trained_s']} s when it is trained")


if __name__ == "__main__":
    main()
