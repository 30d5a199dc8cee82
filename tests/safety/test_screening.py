"""Crisis screening, measured on labelled messages written for it.

The example sets (prompts/safety-examples/) train the classifier and were used to write the
rules. The final sets here were written without sight of the screener, its rules or its
examples, and are used only to measure: never add their messages to the examples or tune a rule
or a threshold on them, or their figures stop meaning anything. When that has happened, write a
new set (the sets that measured earlier rounds, L, M, P to V, now train the classifier).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import regex
import yaml

from bot.safety.classifier import (
    CrisisClassifier,
    load_examples,
    mark_negated,
    ngram_spaces,
    ngram_vectorisers,
)
from bot.safety.rules import SafetyRulesError, load_rules
from bot.safety.screening import Screener, Screening, cached_screener, normalise, sentences
from tests.conftest import ROOT

FINAL = Path(__file__).with_name("crisis_messages_final.yaml")
EVERYDAY_FINAL = Path(__file__).with_name("everyday_final.yaml")
EXAMPLES = ROOT / "prompts" / "safety-examples"
# The targets are recall >= 0.98 and false positives <= 0.10 on hard negatives. The final set
# (451 messages, the eighth written to measure, and 200 everyday ones) was read once, after the
# round's last change: recall 0.977 (255/261), false alarms 0.095 (18/190) on look-alikes and
# 0.035 (7/200) on everyday messages, the right kind named for 250 of 255. (The round before's
# screener, read after for comparison only: 0.977, 0.100 and 0.035.) These floors guard that
# level until a better screener raises them. Failures give counts only, never the final set's
# messages.
FINAL_RECALL_FLOOR = 0.97
FINAL_FALSE_POSITIVE_CEILING = 0.10
EVERYDAY_FALSE_POSITIVE_CEILING = 0.05
CATEGORY_RIGHT_FLOOR = 0.95


@pytest.fixture(scope="module")
def screener() -> Screener:
    return cached_screener(ROOT / "prompts" / "safety.yaml")  # the one the bots in this run use


def messages(path: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    return loaded


def rates(screener: Screener, labelled: list[dict[str, Any]]) -> tuple[float, float, list[str], list[str]]:
    positives = [m for m in labelled if m["crisis"]]
    negatives = [m for m in labelled if not m["crisis"]]
    missed = [m["text"] for m in positives if not screener.screen(m["text"]).crisis]
    alarms = [m["text"] for m in negatives if screener.screen(m["text"]).crisis]
    return 1 - len(missed) / len(positives), len(alarms) / len(negatives), missed, alarms


@pytest.fixture(scope="module")
def final_rates(screener: Screener) -> tuple[float, float, list[str], list[str]]:
    return rates(screener, messages(FINAL))


@pytest.mark.xfail(strict=True, reason="recall a message short of 0.98: 0.977, false alarms 0.095")
def test_final_set_meets_the_targets(final_rates: tuple[float, float, list[str], list[str]]) -> None:
    """The issue's targets: recall of at least 0.98 and false alarms of at most 0.10 on messages
    nothing was tuned on. Expected to fail until the screener gets there; strict, so that the
    day it passes, the floors below and this mark are raised with it."""
    recall, false_positive_rate, _, _ = final_rates
    met = recall >= 0.98 and false_positive_rate <= 0.10
    assert met, f"recall {recall:.3f}, false alarms {false_positive_rate:.3f}"


def test_final_set_recall_and_false_positives(
        final_rates: tuple[float, float, list[str], list[str]]) -> None:
    """On messages nothing was tuned on, recall and false alarms hold at their measured level."""
    recall, false_positive_rate, missed, _ = final_rates
    print(
        f"\ncrisis screening, final set: recall {recall:.3f}, false-positive rate "
        f"{false_positive_rate:.3f} (targets 0.98 and 0.10)"
    )
    assert recall >= FINAL_RECALL_FLOOR, f"{len(missed)} crisis messages missed"
    assert false_positive_rate <= FINAL_FALSE_POSITIVE_CEILING, "too many false alarms on look-alikes"


def test_everyday_messages_rarely_raise_an_alarm(screener: Screener) -> None:
    """Ordinary replies, check-ins and small talk (held out) rarely get a crisis answer."""
    everyday = messages(EVERYDAY_FINAL)
    alarms = sum(screener.screen(m["text"]).crisis for m in everyday)  # a count: never the texts
    rate = alarms / len(everyday)
    print(f"\ncrisis screening, everyday messages: false alarms {alarms}/{len(everyday)}")
    assert rate <= EVERYDAY_FALSE_POSITIVE_CEILING, f"{alarms} false alarms"


def test_known_phrasings_in_the_examples_are_caught(screener: Screener) -> None:
    """Crisis phrasings the practice gave as examples are caught (>= 0.98); look-alikes rarely (<= 0.10)."""
    labelled = [m for path in sorted(EXAMPLES.glob("*.yaml")) for m in messages(path)]
    recall, false_positive_rate, missed, alarms = rates(screener, labelled)
    assert recall >= 0.98, "missed:\n" + "\n".join(missed)
    assert false_positive_rate <= 0.10, "false alarms:\n" + "\n".join(alarms)


def test_every_category_and_language_is_caught_on_the_final_set(screener: Screener) -> None:
    """Each category in English, Spanish and German is caught in at least 60% of unseen messages.

    With seven to eighty-four messages in a cell, one message moves a small cell by 12 to 14
    points.
    """
    seen: Counter[tuple[str, str]] = Counter()
    caught: Counter[tuple[str, str]] = Counter()
    for message in (m for m in messages(FINAL) if m["crisis"]):
        key = (message["category"], message["lang"])
        seen[key] += 1
        caught[key] += screener.screen(message["text"]).crisis
    weak = {key: f"{caught[key]}/{n}" for key, n in seen.items() if caught[key] / n < 0.60}
    assert weak == {}


def test_the_alert_names_the_right_kind_of_crisis(screener: Screener) -> None:
    """The category in an alert is the labelled one for most caught messages of the final set."""
    caught = [m for m in messages(FINAL) if m["crisis"] and screener.screen(m["text"]).crisis]
    right = sum(screener.screen(m["text"]).category == m["category"] for m in caught)
    print(f"\ncategory right for {right}/{len(caught)} caught crisis messages")
    assert right / len(caught) >= CATEGORY_RIGHT_FLOOR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I DON’T want to be here anymore!!!", "i dont want to be here anymore!!!"),
        ("k1ll mysellllf", "kill mysellf"),
        ("Ich würde gern nicht mehr aufwachen", "ich wurde gern nicht mehr aufwachen"),
        ("kiero morir", "quiero morir"),
        ("call 988", "call 988"),
        ("I used to, now I don’t", "i used to, now i dont"),
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


@pytest.mark.parametrize(
    ("text", "crisis"),
    [
        ("I used to want to die, now I want to live", False),
        ("when I was 15 I wanted to die, and now I want to die again", True),
        ("years ago I tried to end it. tonight I want to end it", True),
        ("No, I'm not suicidal, thank you for asking", False),
        ("ich will mich umbringen", True),
    ],
)
def test_a_long_ago_memory_is_told_apart_from_now(screener: Screener, text: str, crisis: bool) -> None:
    """A past wish contrasted with the present is no alarm; the same wish brought back is one."""
    assert screener.screen(text).crisis is crisis


@pytest.mark.parametrize(
    ("text", "rule_fires"),
    [
        ("my brother says 'i want to kms' every time his team loses", False),
        ("mi hijo dice que se quiere morir cada vez que pierde", False),
        ("i want to kms", True),
        ("he said he'll kill me if i leave", True),  # danger from a person is never quoted away
        ("my sister says the voices are a symptom. the voices keep saying kill yourself", True),
        ("my sister says i sound fine but i want to kill myself", True),
    ],
)
def test_someone_elses_words_are_left_to_the_classifier(screener: Screener, text: str,
                                                          rule_fires: bool) -> None:
    """A rule of suicidal language in reported words does not fire by itself; a threat reported does."""
    assert (screener.explain(text) is not None) is rule_fires


@pytest.mark.parametrize(
    ("text", "crisis"),
    [
        ("kms 😂 just put salt in my coffee instead of sugar", False),
        ("mi jefe me va a matar si llego tarde otra vez jaja", False),
        ("meine Mutter bringt mich um, wenn sie das sieht, haha", False),
        ("lol i want to die, i have the pills ready for tonight", True),
        ("haha. anyway i am going to kill myself tonight, i have the rope", True),
        ("he hit me again last night lol i guess i deserved it", True),
    ],
)
def test_a_laugh_leaves_a_rules_match_to_the_classifier(screener: Screener, text: str,
                                                        crisis: bool) -> None:
    """A joke that uses a rule's words is no alarm; a laugh beside a plan, or beside a blow, is."""
    assert screener.explain(text) is not None
    assert screener.screen(text).crisis is crisis


def test_a_rules_match_in_what_the_classifier_knows_for_a_look_alike_is_set_aside(
        screener: Screener) -> None:
    """Under the rule floor, a match is a look-alike the classifier has learnt: no alarm. The
    same words about the client themself still raise one."""
    at_work = "I'm a paramedic, rough overdose call at work tonight, doing the grounding exercise before bed"
    assert screener.explain(at_work) is not None
    assert not screener.screen(at_work).crisis
    assert screener.screen("i took an overdose an hour ago") == Screening(True, "suicidal")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("am Wochenende bring ich mich um, dann ist Ruhe", "suicidal"),
        ("er hat gesagt, er bringt mich um, wenn ich gehe", "danger_from_person"),
        ("der Stau bringt mich noch um", None),  # "this traffic is killing me"
        ("mein Chef bringt mich um, wenn ich zu spät komme", None),
    ],
)
def test_who_does_the_killing_tells_a_german_idiom_from_a_threat(screener: Screener, text: str,
                                                                  category: str | None) -> None:
    """"bringt mich um" said of the weather or a boss is an idiom, no rule's business; said by
    "er", it is a threat; "bring ich mich um" is the person themself."""
    found = screener.explain(text)
    assert (found[0] if found else None) == category


def test_a_comma_does_not_end_a_negation(screener: Screener) -> None:
    """German puts a comma before 'mich umzubringen'; the 'nicht' before it still turns it around."""
    assert screener.explain("ich habe nicht vor, mich umzubringen") is None
    assert screener.explain("ich habe vor, mich umzubringen") is not None


def test_the_classifier_reads_words_after_a_negation_as_negated() -> None:
    """'never kill myself' and 'kill myself' share no words for the classifier; 'no one' is no negation."""
    negation = load_rules(ROOT / "prompts" / "safety.yaml").negation
    cues, not_negating = regex.compile(negation.cues), regex.compile(negation.not_negating)
    assert mark_negated("i would never kill myself. i love them", cues, not_negating, 3) == (
        "i would never notkill notmyself . i love them .")
    assert mark_negated("no one would miss me", cues, not_negating, 3) == "no one would miss me ."


def _practice_copy(tmp_path: Path) -> Path:
    """The practice's rules with a small example folder of their own (quick to train)."""
    rules = tmp_path / "safety.yaml"
    rules.write_text((ROOT / "prompts" / "safety.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "safety-examples").mkdir()
    for name in ("set-h.yaml", "everyday.yaml"):
        (tmp_path / "safety-examples" / name).write_text(
            (EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    return rules


def test_a_practices_new_examples_take_effect_at_the_next_start_despite_the_cache(tmp_path: Path) -> None:
    """The trained classifier is cached; an unchanged start reuses it, a changed example set retrains it."""
    rules, cache = _practice_copy(tmp_path), tmp_path / "cache"
    coined = "zorblax quintessence purple"  # words no example has: only new examples can teach them
    assert not Screener.from_file(rules, cache).screen(coined).crisis
    [stored] = cache.glob("crisis-classifier-*.pickle")
    first = stored.stat()

    assert not Screener.from_file(rules, cache).screen(coined).crisis
    assert [p.name for p in cache.glob("crisis-classifier-*.pickle")] == [stored.name]
    assert (stored.stat().st_ino, stored.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    with (tmp_path / "safety-examples" / "set-new.yaml").open("w", encoding="utf-8") as file:
        yaml.safe_dump({"messages": [
            {"text": f"{coined} {n}", "crisis": True, "category": "suicidal", "lang": "en"}
            for n in ("tonight", "again", "now", "for real", "i mean it", "soon", "today", "help")
        ]}, file)
    assert Screener.from_file(rules, cache).screen(coined).crisis
    [retrained] = cache.glob("crisis-classifier-*.pickle")
    assert retrained.name != stored.name  # the stale one is gone


NEW_PHRASINGS = [  # each once in the examples, as a practice might add them
    "setting my out of office to 'indefinitely'. it's accurate",
    "topping up my electricity so the flat stays warm for whoever finds me",
    "picked a sunday in november. the clocks go back so it'll be dark early and no one's around",
]


def test_one_example_of_a_new_phrasing_catches_it_said_in_other_words(tmp_path: Path) -> None:
    """A message nearer an example of crisis than any look-alike or everyday example is flagged:
    one example of a new phrasing is enough for its paraphrases, not for everyday messages
    with the same words; without the nearest-example score, each paraphrase scores lower and
    not all are heard."""
    rules_path = _practice_copy(tmp_path)
    with (tmp_path / "safety-examples" / "set-new.yaml").open("w", encoding="utf-8") as file:
        yaml.safe_dump({"messages": [{"text": text, "crisis": True, "category": "suicidal",
                                      "lang": "en"} for text in NEW_PHRASINGS]}, file)
    rules, examples = load_rules(rules_path), load_examples(tmp_path / "safety-examples")
    assert rules.classifier is not None
    paraphrases = ["my out-of-office now says 'indefinitely'. that's the honest answer",
                   "put credit on the electric meter so it's warm for whoever finds me",
                   "i chose a sunday in november when it gets dark early and nobody is about"]
    everyday = ["my out of office says back monday",
                "put credit on the electric meter before the cold snap",
                "sunday in november, dark early, cosy night in with soup"]
    caught, scores = {}, {}
    for neighbours in (True, False):
        screener = Screener(rules, CrisisClassifier(
            examples, normalise, rules.classifier.regularisation, rules.negation,
            neighbours=neighbours))
        caught[neighbours] = [text for text in paraphrases + everyday if screener.screen(text).crisis]
        scores[neighbours] = [screener.classifier_probability(text, normalise(text))
                              for text in paraphrases]
    assert caught[True] == paraphrases
    assert len(caught[False]) < len(paraphrases)
    assert all(near > far for near, far in zip(scores[True], scores[False], strict=True))


def test_an_unreadable_cache_is_trained_again(tmp_path: Path) -> None:
    """A damaged cache file costs a retraining at start-up, never a start that fails."""
    rules, cache = _practice_copy(tmp_path), tmp_path / "cache"
    Screener.from_file(rules, cache)
    [stored] = cache.glob("crisis-classifier-*.pickle")
    stored.write_bytes(b"not a pickle")
    assert Screener.from_file(rules, cache).screen("i want to kill myself tonight").crisis
    assert stored.read_bytes() != b"not a pickle"


def test_scoring_reads_the_same_ngrams_as_the_training_library() -> None:
    """Screening scores n-grams without scikit-learn; they match its vectorisers exactly, so the
    figures measured at training hold for every message screened."""
    texts = [normalise(m["text"]) for path in sorted(EXAMPLES.glob("*.yaml")) for m in messages(path)]
    fitted = [vectoriser.fit(texts[::2]) for vectoriser in ngram_vectorisers()]
    expected = [vectoriser.transform(texts[1::2]).toarray() for vectoriser in fitted]
    for space, matrix in zip(ngram_spaces(fitted), expected, strict=True):
        for text, row in zip(texts[1::2], matrix, strict=True):
            columns, values = space.columns(text)
            ours = np.zeros(len(row))
            ours[[c - space.offset for c in columns]] = values
            np.testing.assert_allclose(ours, row, atol=1e-12)


def test_loading_the_cached_classifier_does_not_import_the_training_library(tmp_path: Path) -> None:
    """The bot starts from the cache without scikit-learn, which takes seconds to import."""
    rules, cache = _practice_copy(tmp_path), tmp_path / "cache"
    Screener.from_file(rules, cache)
    code = ("import sys; from pathlib import Path; from bot.safety.screening import Screener; "
            f"s = Screener.from_file(Path({str(rules)!r}), Path({str(cache)!r})); "
            "assert s.screen('i want to kill myself tonight').crisis; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=ROOT).stdout
    assert out.strip() == "[]"


CALM_REFLECTION = (
    "Today's integration walk was slow and beautiful. I noticed the trees, the light on the "
    "water, the quiet of the path. I made tea and wrote three pages about the session. My "
    "partner and I cooked dinner together and laughed about the dog.")


@pytest.mark.parametrize("worrying", [
    "Honestly I have been saying goodbye to people in my head.",
    "I have been thinking about how to make sure I don't wake up tomorrow.",
    "I have been sorting out who gets my things after I am gone.",
])
def test_one_worrying_sentence_in_a_long_calm_reflection_is_not_drowned_out(
        screener: Screener, worrying: str) -> None:
    """Read whole, four calm sentences dilute the fifth; it is also read on its own."""
    message = f"{CALM_REFLECTION} {worrying}"
    assert screener.explain(message) is None  # no rule: the classifier has to see it
    assert screener.classifier is not None
    assert screener.classifier.probability(message, normalise(message)) < 0.5  # whole, it is lost
    assert screener.screen(message).crisis
    assert not screener.screen(CALM_REFLECTION).crisis
    assert not screener.screen(f"{CALM_REFLECTION} I feel lighter than I have in months.").crisis


def test_a_message_is_read_by_its_sentences_when_it_has_several() -> None:
    assert sentences("I'm ok. Just tired today!\nSee you Tuesday") == [
        "I'm ok.", "Just tired today!", "See you Tuesday"]
    assert sentences("grounded, 3. ok") == []  # one sentence of two words or more
    long = " ".join(f"Sentence number {n}." for n in range(40))
    read = sentences(long)
    assert read[:2] == ["Sentence number 0.", "Sentence number 1."]  # the first six and last six
    assert read[-2:] == ["Sentence number 38.", "Sentence number 39."]
    assert len(read) == 12


def test_skipping_the_sentence_encoder_never_changes_a_decision(
        screener: Screener, monkeypatch: pytest.MonkeyPatch) -> None:
    """The screener runs the sentence encoder only where the n-grams leave the answer open; on a
    sample of the examples (every language, both labels) it decides as the full reading does,
    and most everyday messages never reach the encoder."""
    assert screener.classifier is not None
    sample = [example for example in load_examples(EXAMPLES)[::5]
              if normalise(example.text) and not screener.explain(example.text)]
    encoded: list[str] = []
    finish = screener.classifier.finish
    monkeypatch.setattr(screener.classifier, "finish",
                        lambda readings: encoded.extend(r.text for r in readings) or finish(readings))
    for example in sample:
        normal = normalise(example.text)
        for needed in (0.5, 0.65):
            full = screener.classifier_probability(example.text, normal) >= needed
            assert screener.classifier_reaches(example.text, normal, needed) == full, example.text
    encoded.clear()
    everyday = [example.text for example in sample if not example.crisis]
    for text in everyday:
        screener.classifier_reaches(text, normalise(text), 0.65)
    assert len(set(encoded)) < len(everyday) / 2
