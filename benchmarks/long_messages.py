"""Long messages built from the labelled examples, for timing the screener and for checking that
its shortcuts decide as the plain evaluation does.

A client may send Telegram's longest message, 4,096 characters: a long reflection, sometimes with
one crisis sentence at its start, in its middle or at its end. These are made by joining example
messages (prompts/safety-examples/), so they read like what clients write, in each language.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "prompts" / "safety-examples"
TELEGRAM_LIMIT = 4096
POSITIONS = ("first", "middle", "last")
LANGUAGES = ("en", "es", "de")
CATEGORIES = ("suicidal", "self_harm", "danger_from_person", "medical_emergency")
# How clients run sentences together: a full stop, a bare space, a new line.
_SEPARATORS = (". ", " ", "\n")


def example_messages(path: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    return loaded


def joined(parts: Iterable[str]) -> str:
    """Messages run together as one, with the separators clients use in turn."""
    text = ""
    for n, part in enumerate(parts):
        text += (_SEPARATORS[n % len(_SEPARATORS)] if text else "") + part.strip()
    return text


def placed(sentence: str, others: Sequence[str], position: str) -> str:
    """`sentence` first, in the middle or last among `others`."""
    at = {"first": 0, "middle": len(others) // 2, "last": len(others)}[position]
    return joined([*others[:at], sentence, *others[at:]])


def filler(pool: Sequence[str], rng: random.Random, room: int) -> list[str]:
    """Messages drawn from `pool` until the next would not fit in `room` characters, joined."""
    chosen: list[str] = []
    while True:
        candidate = rng.choice(pool)
        if len(joined([*chosen, candidate])) + 2 > room:
            return chosen
        chosen.append(candidate)


def telegram_length_messages(per_language: int = 4) -> dict[str, list[str]]:
    """Messages of nearly 4,096 characters by kind: everyday reflections in each language, and
    reflections with one crisis message first, in the middle or last (one of each category in
    each language, in a reflection of its own language)."""
    rng = random.Random(4096)
    everyday = example_messages(EXAMPLES / "everyday.yaml")
    crisis = [m for path in sorted(EXAMPLES.glob("set-*.yaml")) for m in example_messages(path)
              if m["crisis"]]
    kinds: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        pool = [m["text"] for m in everyday if m["lang"] == lang]
        kinds[f"everyday, {lang}"] = [
            joined(filler(pool, rng, TELEGRAM_LIMIT)) for _ in range(per_language)]
        for position in POSITIONS:
            kinds.setdefault(f"crisis {position}", [])
        for category in CATEGORIES:
            sentence = rng.choice([m["text"] for m in crisis
                                   if m["lang"] == lang and m["category"] == category])
            for position in POSITIONS:
                others = filler(pool, rng, TELEGRAM_LIMIT - len(sentence) - 2)
                kinds[f"crisis {position}"].append(placed(sentence, others, position))
    return kinds
