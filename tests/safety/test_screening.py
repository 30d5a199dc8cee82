"""Crisis screening, measured on a labelled set of messages written for it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.safety.rules import SafetyRulesError, load_rules
from bot.safety.screening import Screener, normalise
from tests.conftest import ROOT

LABELLED = Path(__file__).with_name("crisis_messages.yaml")
RECALL_FLOOR = 0.98
FALSE_POSITIVE_CEILING = 0.10


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(load_rules(ROOT / "prompts" / "safety.yaml"))


@pytest.fixture(scope="module")
def labelled() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))["messages"]
    return messages


def test_recall_and_false_positives_on_the_labelled_set(
    screener: Screener, labelled: list[dict[str, Any]]
) -> None:
    """Recall on crisis messages is at least 0.98; false positives on hard negatives at most 0.10."""
    positives = [m for m in labelled if m["crisis"]]
    negatives = [m for m in labelled if not m["crisis"]]
    missed = [m for m in positives if not screener.screen(m["text"]).crisis]
    false_alarms = [m for m in negatives if screener.screen(m["text"]).crisis]
    recall = 1 - len(missed) / len(positives)
    false_positive_rate = len(false_alarms) / len(negatives)
    print(
        f"\ncrisis screening: recall {recall:.3f} on {len(positives)} crisis messages, "
        f"false-positive rate {false_positive_rate:.3f} on {len(negatives)} hard negatives"
    )
    assert recall >= RECALL_FLOOR, "missed:\n" + "\n".join(m["text"] for m in missed)
    assert false_positive_rate <= FALSE_POSITIVE_CEILING, "false alarms:\n" + "\n".join(
        m["text"] for m in false_alarms
    )


def test_every_category_and_language_is_caught(screener: Screener, labelled: list[dict[str, Any]]) -> None:
    """Each category, in English, Spanish and German, is recognised in at least 95% of its messages."""
    seen: Counter[tuple[str, str]] = Counter()
    caught: Counter[tuple[str, str]] = Counter()
    for message in (m for m in labelled if m["crisis"]):
        key = (message["category"], message["lang"])
        seen[key] += 1
        caught[key] += screener.screen(message["text"]).crisis
    weak = {key: f"{caught[key]}/{n}" for key, n in seen.items() if caught[key] / n < 0.95}
    assert weak == {}


def test_the_category_is_the_right_one_for_most_messages(
    screener: Screener, labelled: list[dict[str, Any]]
) -> None:
    """The alert names the right kind of crisis for at least 85% of crisis messages."""
    positives = [m for m in labelled if m["crisis"]]
    right = sum(screener.screen(m["text"]).category == m["category"] for m in positives)
    assert right / len(positives) >= 0.85


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I DON’T want to be here anymore!!!", "i dont want to be here anymore!!!"),
        ("k1ll mysellllf", "kill mysellf"),
        ("Ich würde gern nicht mehr aufwachen", "ich wurde gern nicht mehr aufwachen"),
        ("no quiero vivir más", "no quiero vivir mas"),
        ("call 988", "call 988"),
    ],
)
def test_text_is_normalised_before_matching(text: str, expected: str) -> None:
    """Case, apostrophes, accents, leetspeak and stretched letters do not hide a phrase."""
    assert normalise(text) == expected


def test_a_broken_rule_is_reported_with_its_file(tmp_path: Path) -> None:
    """A practice's bad pattern is named, with the file, instead of crashing the bot."""
    broken = tmp_path / "safety.yaml"
    broken.write_text(
        (ROOT / "prompts" / "safety.yaml")
        .read_text()
        .replace("resources:", "resources:\n  XX: 'x'\ncategories_typo: {}\n", 1)
    )
    with pytest.raises(SafetyRulesError) as error:
        load_rules(broken)
    assert any(problem.startswith("safety.yaml") for problem in error.value.problems)
