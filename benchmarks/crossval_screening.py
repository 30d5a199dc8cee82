"""Cross-validation of crisis screening between the example sets in prompts/safety-examples/.

Each crisis set (set-a, set-b, ...) is held out in turn: the classifier trains on the other sets
and on the everyday messages outside one share, and is measured on the held-out set and that share
of everyday messages. The rules are the same in every fold, and were written with every set in
view, so these figures flatter them (the classifier's figures alone do not). A rule's match
stands as in the screener: not in a laughing message, nor where the fold's classifier gives
less than the rule floor, which is the classifier's alone to judge. The evaluation sets
in tests/safety, which flatter nothing, are never read here. This is the tool for choosing the
threshold and for seeing where examples are thin.

Run with `make crossval`; `--sweep` adds a table of plain thresholds (the one for messages with
a word of crisis kept at or below each), `--misses` lists what each fold got wrong,
`--without-neighbours` measures the classifier without its nearest-example score. Each text's
sentence embedding is worked out once and reused in every fold (the encoder gives the same
numbers for a text whatever else is in its batch): a run takes about 3 minutes instead of 5½.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex

from bot.safety import classifier
from bot.safety.classifier import CrisisClassifier, Embedder, Example, load_example_file
from bot.safety.rules import load_rules
from bot.safety.screening import Screener, normalise

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "prompts" / "safety.yaml"
EVERYDAY = "everyday"


@dataclass(frozen=True)
class Scored:
    example: Example
    fold: str
    everyday: bool
    rule: bool
    laughing: bool  # a rule's match in it is the classifier's call
    probability: float
    vocabulary: bool  # uses a word of crisis, so the lower threshold applies


@dataclass(frozen=True)
class Thresholds:
    plain: float
    vocabulary: float
    rule_floor: float = 0.0  # a rule's match stands when the classifier gives at least this

    def flagged(self, s: Scored) -> bool:
        return (self.rule_stands(s)
                or s.probability >= (self.vocabulary if s.vocabulary else self.plain))

    def rule_stands(self, s: Scored) -> bool:
        return s.rule and not s.laughing and s.probability >= self.rule_floor


class RememberingEmbedder:
    """The sentence encoder, remembering what it has read: each fold reads the same texts."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._known: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._known))
        if new:
            self._known.update(zip(new, self._embedder(new), strict=True))
        return np.vstack([self._known[t] for t in texts]) if texts else self._embedder(texts)


def score_folds(embeddings: bool, neighbours: bool = True) -> list[Scored]:
    shared = classifier.shared_embedder
    if embeddings:
        remembering = RememberingEmbedder(shared())
        classifier.shared_embedder = lambda: remembering  # type: ignore[assignment,misc]
    try:
        return _score_folds(embeddings, neighbours)
    finally:
        classifier.shared_embedder = shared  # type: ignore[method-assign]


def _score_folds(embeddings: bool, neighbours: bool) -> list[Scored]:
    rules = load_rules(RULES)
    assert rules.classifier is not None, "the rules name no classifier"
    folder = RULES.parent / rules.classifier.examples
    sets = {path.stem: load_example_file(path) for path in sorted(folder.glob("*.yaml"))}
    everyday = sets.pop(EVERYDAY)
    rule_screener = Screener(rules)
    vocabulary = regex.compile(rules.classifier.vocabulary)
    scored = []
    for fold, (name, held_out) in enumerate(sets.items()):
        everyday_held_out = everyday[fold::len(sets)]
        training = [e for other, examples in sets.items() if other != name for e in examples]
        training += [e for i, e in enumerate(everyday) if i % len(sets) != fold]
        screener = Screener(rules, CrisisClassifier(
            training, normalise, rules.classifier.regularisation, rules.negation,
            embeddings=embeddings, neighbours=neighbours))
        for example, is_everyday in [*((e, False) for e in held_out),
                                     *((e, True) for e in everyday_held_out)]:
            normal = normalise(example.text)
            scored.append(Scored(example, name, is_everyday, rule_screener.screen(example.text).crisis,
                                 screener.laughs(example.text),
                                 screener.classifier_probability(example.text, normal),
                                 bool(vocabulary.search(normal))))
    return scored


def figures(scored: list[Scored], thresholds: Thresholds) -> dict[str, float]:
    flagged = thresholds.flagged

    positives = [s for s in scored if s.example.crisis]
    hard = [s for s in scored if not s.example.crisis and not s.everyday]
    everyday = [s for s in scored if s.everyday]
    return {
        "recall": sum(map(flagged, positives)) / len(positives),
        "rules_recall": sum(map(thresholds.rule_stands, positives)) / len(positives),
        # The rules were written with every set in view; the classifier never saw the held-out one.
        "model_recall": sum(s.probability >= thresholds.plain for s in positives) / len(positives),
        "model_hard_fp": sum(s.probability >= thresholds.plain for s in hard) / len(hard),
        "hard_fp": sum(map(flagged, hard)) / len(hard),
        "everyday_fp": sum(map(flagged, everyday)) / len(everyday),
        "positives": len(positives), "hard": len(hard), "everyday": len(everyday),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="figures at a range of thresholds")
    parser.add_argument("--threshold", type=float, help="instead of the one in safety.yaml")
    parser.add_argument("--vocabulary-threshold", type=float, help="instead of the one in safety.yaml")
    parser.add_argument("--rule-floor", type=float, help="instead of the one in safety.yaml")
    parser.add_argument("--misses", action="store_true", help="print the held-out examples missed")
    parser.add_argument("--ngrams-only", action="store_true", help="the classifier without embeddings")
    parser.add_argument("--without-neighbours", action="store_true",
                        help="the classifier without its nearest-example score")
    args = parser.parse_args()
    rules = load_rules(RULES)
    assert rules.classifier is not None
    thresholds = Thresholds(args.threshold or rules.classifier.threshold,
                            args.vocabulary_threshold or rules.classifier.vocabulary_threshold,
                            rules.classifier.rule_floor if args.rule_floor is None else args.rule_floor)
    scored = score_folds(rules.classifier.embeddings and not args.ngrams_only,
                         not args.without_neighbours)
    f = figures(scored, thresholds)
    print(f"cross-validation at thresholds {thresholds.plain} and {thresholds.vocabulary} (with a "
          f"word of crisis): recall {f['recall']:.3f} "
          f"(rules alone {f['rules_recall']:.3f}) of {f['positives']}, "
          f"false alarms {f['hard_fp']:.3f} of {f['hard']} look-alikes, "
          f"{f['everyday_fp']:.3f} of {f['everyday']} everyday messages; classifier alone "
          f"{f['model_recall']:.3f} and {f['model_hard_fp']:.3f}")
    for name in dict.fromkeys(s.fold for s in scored):
        f = figures([s for s in scored if s.fold == name], thresholds)
        print(f"  held out {name}: recall {f['recall']:.3f} (rules alone {f['rules_recall']:.3f}), "
              f"look-alikes {f['hard_fp']:.3f}, everyday {f['everyday_fp']:.3f}")
    seen: Counter[tuple[str, str]] = Counter()
    caught: Counter[tuple[str, str]] = Counter()
    for s in scored:
        if s.example.crisis and s.example.category:
            key = (s.example.category, s.example.lang)
            seen[key] += 1
            caught[key] += thresholds.flagged(s)
    print("  " + ", ".join(f"{c} {lang} {caught[c, lang]}/{n}" for (c, lang), n in sorted(seen.items())))
    if args.sweep:
        for step in range(12, 39):
            t = step / 40
            f = figures(scored, Thresholds(t, min(t, thresholds.vocabulary), thresholds.rule_floor))
            print(f"  {t:.3f}: recall {f['recall']:.3f}, look-alikes {f['hard_fp']:.3f}, "
                  f"everyday {f['everyday_fp']:.3f}; classifier alone {f['model_recall']:.3f}, "
                  f"{f['model_hard_fp']:.3f}")
    if args.misses:
        for s in scored:
            flagged = thresholds.flagged(s)
            if s.example.crisis != flagged:
                kind = ("missed" if s.example.crisis else "alarm (rule)" if thresholds.rule_stands(s)
                        else "alarm")
                print(f"{s.fold} {kind} {s.probability:.2f} [{s.example.lang}] {s.example.text}")


if __name__ == "__main__":
    main()
