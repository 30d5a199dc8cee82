"""How long crisis screening takes per message (budget: 20 ms), and what it adds to start-up.

Over every labelled message of the example sets (not the held-out sets in tests/safety, which
nothing but their tests reads), and over
messages of Telegram's longest, 4,096 characters (benchmarks/long_messages.py): everyday
reflections in English, Spanish and German, and reflections with a crisis message first, in the
middle or last. Each is timed twice: the rules alone (`Screener.explain`: normalising the text
and every rule over it) and the whole `screen()`, rules and classifier.
Start-up is timed twice: with an empty cache (the classifier is trained, as at the first start
after its examples change) and with the classifier in the cache (every other start), each in a
fresh process so that imports and loading the sentence encoder's weights count.
Prints one JSON line and a summary. Run with `make bench`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from benchmarks.long_messages import telegram_length_messages
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


def timed(call: Callable[[str], object], texts: list[str], rounds: int = ROUNDS) -> dict[str, float]:
    """Median, p99 and slowest milliseconds of `call` over `texts`, `rounds` times each."""
    timings = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            call(text)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {"median_ms": round(statistics.median(timings), 3),
            "p99_ms": round(timings[int(len(timings) * 0.99)], 3), "max_ms": round(timings[-1], 3)}


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        training_seconds = start_up_seconds(Path(cache))
        start_up = sorted(start_up_seconds(Path(cache)) for _ in range(3))
        screener = Screener.from_file(ROOT / "prompts" / "safety.yaml", Path(cache))
    paths = sorted((ROOT / "prompts" / "safety-examples").glob("*.yaml"))
    texts = [m["text"] for path in paths
             for m in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]]
    long_by_kind = telegram_length_messages()
    long = [text for kind in long_by_kind.values() for text in kind]
    screen, rules = timed(screener.screen, texts), timed(screener.explain, texts)
    long_screen, long_rules = timed(screener.screen, long), timed(screener.explain, long)
    result = {
        "benchmark": "crisis_screening", "messages": len(texts), "rounds": ROUNDS,
        **screen, "budget_ms": 20, "rules": rules,
        "long_messages": len(long), "long_chars": [min(map(len, long)), max(map(len, long))],
        "long_screen": long_screen, "long_rules": long_rules,
        "long_median_ms_by_kind": {
            kind: {"rules": timed(screener.explain, some)["median_ms"],
                   "screen": timed(screener.screen, some)["median_ms"]}
            for kind, some in long_by_kind.items()},
        "start_up_trained_s": round(training_seconds, 2),
        "start_up_cached_s": round(statistics.median(start_up), 2),
    }
    print(json.dumps(result))
    print(f"crisis screening: median {screen['median_ms']} ms, p99 {screen['p99_ms']} ms, "
          f"max {screen['max_ms']} ms per message over {len(texts)} messages, {ROUNDS} rounds "
          f"(budget 20 ms); the rules alone median {rules['median_ms']} ms, p99 {rules['p99_ms']} ms")
    print(f"{len(long)} messages of {result['long_chars'][0]} to {result['long_chars'][1]} "
          f"characters: median {long_screen['median_ms']} ms, p99 {long_screen['p99_ms']} ms; "
          f"the rules alone median {long_rules['median_ms']} ms, p99 {long_rules['p99_ms']} ms")
    print(f"start-up {result['start_up_cached_s']} s with the classifier cached, "
          f"{result['start_up_trained_s']} s when it is trained")


if __name__ == "__main__":
    main()
