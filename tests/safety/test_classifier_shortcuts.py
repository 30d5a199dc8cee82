"""The classifier's shortcuts change how fast a message is screened, never what is decided.

The screener reads each word's character n-grams once (the examples' words once for good), and a
long message that only one of its sentences could tip has those sentences through the encoder
first, the whole message only when they leave the answer open. Held here to the plain reading,
as the screener did it before: every text's n-grams counted anew, the whole message through the
encoder first, then every sentence that could still tip it in one batch. The decision (crisis
or not, and which kind) must be the same for every example message, longer ones built from them
and messages of Telegram's longest, 4,096 characters.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bot.safety.screening as screening
from benchmarks.long_messages import example_messages, telegram_length_messages
from bot.safety.classifier import (
    _WHITE_SPACES,
    _WORDS,
    CrisisClassifier,
    LinearScores,
    NgramSpace,
    Reading,
    _probability,
)
from bot.safety.rules import Category
from bot.safety.screening import (
    Screener,
    Screening,
    _combined,
    cached_screener,
    classifier_reads_all,
    normalise,
    sentences,
)
from tests.conftest import ROOT
from tests.safety.test_rule_shortcuts import longer_messages

EXAMPLES = ROOT / "prompts" / "safety-examples"


@pytest.fixture(scope="module")
def screener() -> Screener:
    return cached_screener(ROOT / "prompts" / "safety.yaml")  # the one the other safety tests use


def plain_columns(space: NgramSpace, text: str) -> tuple[list[int], list[float]]:
    """Every n-gram of the text counted anew, as the screener read them before its shortcuts."""
    text = text.lower()
    found: Counter[str] = Counter()
    if space.analyzer == "word":
        words = _WORDS.findall(text)
        for n in range(space.low, space.high + 1):
            found.update(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    else:
        for word, times in Counter(_WHITE_SPACES.sub(" ", text).split()).items():
            padded = f" {word} "
            grams: list[str] = []
            for n in range(space.low, space.high + 1):
                grams += [padded[i:i + n] for i in range(max(len(padded) - n, 0) + 1)]
                if len(padded) <= n:
                    break
            for _ in range(times):
                found.update(grams)
    counts = {column: times for ngram, times in found.items()
              if (column := space.vocabulary.get(ngram)) is not None}
    if not counts:
        return [], []
    columns = list(counts)
    values = [(1 + math.log(counts[c])) * space.idf[c] for c in columns]
    length = math.sqrt(sum(v * v for v in values))
    return [space.offset + c for c in columns], [v / length for v in values]


def plain_features(model: LinearScores, text: str) -> tuple[np.ndarray, np.ndarray]:
    columns: list[int] = []
    values: list[float] = []
    for space in model.spaces:
        more_columns, more_values = plain_columns(space, text)
        columns += more_columns
        values += more_values
    return np.asarray(columns, dtype=np.intp), np.asarray(values)


def plain_reaches(classifier: CrisisClassifier, text: str, normal: str, needed: float) -> bool:
    """The classifier's answer as the screener worked it out before: the whole message through
    the encoder first, then the sentences that could still tip it, in one batch."""
    parts = sentences(text)
    readings = []
    for each_text, each_normal in zip([text, *parts], [normal, *map(normalise, parts)], strict=True):
        features = plain_features(classifier._crisis, classifier._prepare(each_normal))
        readings.append(Reading(each_text, features,
                                _probability(classifier._crisis.decisions(features)[0]),
                                classifier._with_embeddings is not None))
    whole, *each = readings
    if _combined(whole.ceiling, [part.ceiling for part in each]) < needed:
        return False
    [whole_probability] = classifier.finish([whole])
    if whole_probability >= needed:
        return True
    able = [part for part in each if _combined(whole_probability, [part.ceiling]) >= needed]
    return bool(able) and _combined(whole_probability, classifier.finish(able)) >= needed


def plain_category(classifier: CrisisClassifier, normal: str) -> Category:
    model = classifier._category
    decisions = model.decisions(plain_features(model, classifier._prepare(normal)))
    kinds = classifier._categories
    return kinds[int(np.argmax(decisions))] if len(kinds) > 2 else kinds[int(decisions[0] > 0)]


def plain_screening(screener: Screener, text: str) -> Screening:
    """The screening as it was before the shortcuts (the rules' own shortcuts are held to every
    rule over the whole text in test_rule_shortcuts.py)."""
    classifier = screener.classifier
    assert classifier is not None
    normal = normalise(text)
    if not normal:
        return Screening(False)
    settings = screener.rules.classifier
    assert settings is not None
    fired = screener.explain(text)
    if fired and (not classifier_reads_all(text) or (not screener.laughs(text) and plain_reaches(
            classifier, text, normal, settings.rule_floor))):
        return Screening(True, fired[0])
    needed = screener.needed(normal)
    if plain_reaches(classifier, text, normal, needed):
        return Screening(True, plain_category(classifier, normal))
    return Screening(False)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_is_decided_as_by_the_plain_reading(screener: Screener, path: Path) -> None:
    """Each example message, and longer ones built from them, get the same answer and kind."""
    texts = [m["text"] for m in example_messages(path)] + longer_messages(path)
    differ = [text for text in texts if screener.screen(text) != plain_screening(screener, text)]
    assert differ == []


@pytest.fixture(scope="module")
def longest() -> list[str]:
    return [text for kind in telegram_length_messages().values() for text in kind]


def test_messages_of_telegrams_longest_are_decided_as_by_the_plain_reading(
        screener: Screener, longest: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """4,096-character reflections, everyday or with a crisis message anywhere, get the same
    answer, for less of the sentence encoder's time: most never have the whole message through it."""
    assert screener.classifier is not None
    encoded: list[str] = []
    finish = screener.classifier.finish
    monkeypatch.setattr(screener.classifier, "finish",
                        lambda readings: encoded.extend(r.text for r in readings) or finish(readings))
    decided = [screener.screen(text) for text in longest]
    shortcut = list(encoded)
    encoded.clear()
    assert decided == [plain_screening(screener, text) for text in longest]
    assert sum(d.crisis for d in decided) >= 30  # most crisis messages placed in them are found
    whole = set(longest)
    whole_plain = sum(text in whole for text in encoded)
    assert whole_plain >= 12  # the plain reading has at least a quarter of them through it
    assert sum(text in whole for text in shortcut) <= whole_plain // 4
    assert len(shortcut) < len(encoded)


def test_a_score_too_near_the_threshold_is_worked_out_as_the_plain_reading_does(
        screener: Screener, longest: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A sentence read alone can score a hair off what it scores in a batch; a score that near
    the threshold is worked out again in the plain reading's batches (here: every score)."""
    monkeypatch.setattr(screening, "_BATCH_MARGIN", 1.0)
    some = longest[::4]
    assert [screener.screen(text) for text in some] == [plain_screening(screener, text)
                                                        for text in some]
