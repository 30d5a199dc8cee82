"""The crisis screener: is this message crisis language, and of which kind?

Rules are patterns over a normalised form of the text, so "I dont wanna b here anymore",
"I don’t want to be here any more" and "I DON'T WANT TO BE HERE ANYMORE!!!" read alike.
A classifier trained on labelled examples (bot/safety/classifier.py) catches what no rule names.
A match is dropped when a negation cue stands just before it ("I would never hurt myself"),
when it lies inside a known safe phrase ("not suicidal"), when it reports someone else's words
("my son says 'kms'"; then the classifier decides), or, for past-tense rules, when the sentence
places it long ago ("when I was 15 I wanted to die"). Where the classifier reads every sentence,
a match in a laughing message ("kms 😂") is also the classifier's call, and one in a message the
classifier is all but sure is a look-alike (under the rule floor) is set aside. When in doubt,
it flags: a false alarm costs a therapist a minute, a miss can cost far more.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import regex

from bot.safety.classifier import (
    CrisisClassifier,
    Reading,
    cache_key,
    cached_classifier,
    example_files,
    load_examples,
)
from bot.safety.prefilter import Message, Prefilter
from bot.safety.rules import CATEGORIES, Category, SafetyRules, load_rules

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s", "7": "t"})
_WORD = regex.compile(r"\w+")
# Kinds of crisis a client may be quoting someone else about (danger to them is never quoted away).
_REPORTABLE = {"suicidal", "self_harm"}
_VOICES = regex.compile(r"\b(voices?|voces|stimmen?)\b")
# Sentences read one by one (each through the sentence encoder, under a millisecond apiece): in
# a long message, its first and last six, which keeps Telegram's 4,096 characters in budget.
_SENTENCES_READ = 6
# How much the whole message counts against its most worrying sentence. Cross-validation over
# sets A to P found 0.2 to 0.5 alike overall (0.2 with thresholds 0.7 and 0.6 a little ahead on
# every figure); at 0.5 a crisis sentence after four calm ones could never reach the threshold.
_WHOLE_WEIGHT = 0.2
_READ_TOGETHER = 300  # characters: a message this short is embedded with its sentences
# The sentence encoder's numbers for a sentence differ in the last bits with the batch it is read
# in (by at most 4e-7 in a probability, over random batches of the examples): a score read in
# other batches than the plain reading's is trusted this far from the threshold, and nearer is
# worked out again in the plain reading's batches.
_BATCH_MARGIN = 1e-3
_SENTENCE_END = regex.compile(r"[.!?;\n]")
_CLAUSE_END = regex.compile(r"[.!?;,\n]")
# For "is this phrase set now": a contrast after "and" or "but" starts a clause of its own
# ("years ago I tried to end my life and today I celebrate being alive").
_CONTRAST = regex.compile(r"[.!?;,\n]|\b(?:and|but|y|pero|und|aber)\b")


def normalise(text: str) -> str:
    """Lower case, accents and apostrophes gone, leetspeak read, stretched letters shortened."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = regex.sub(r"['’`´]", "", folded)
    # Digits inside words are letters in disguise ("k1ll", "d1e"); digits alone stay numbers.
    folded = regex.sub(r"(?<=[a-z])[013457@$]+|[013457@$]+(?=[a-z])",
                       lambda m: m.group().translate(_LEET), folded)
    folded = regex.sub(r"(\p{L})\1{2,}", r"\1\1", folded)
    folded = regex.sub(r"\bk(?=ier[eo]s?\b)", "qu", folded)  # "kiero" is how many write "quiero"
    # Commas stay: they end a clause ("I used to want to die, now I want to live").
    folded = regex.sub(r"[^\w\s.,!?;\n]", " ", folded)
    return regex.sub(r"[ \t]+", " ", folded).strip()


@dataclass(frozen=True)
class _Rule:
    category: Category
    pattern: regex.Pattern[str]
    past: bool
    reportable: bool  # someone else's words leave it to the classifier
    prefilter: Prefilter


@dataclass(frozen=True)
class Screening:
    crisis: bool
    category: Category | None = None

    def as_json(self, text: str) -> dict[str, object]:
        return {"text": text, "crisis": self.crisis, "category": self.category}


class Screener:
    def __init__(self, rules: SafetyRules, classifier: CrisisClassifier | None = None) -> None:
        self.rules = rules
        self.classifier = classifier
        self._threshold = rules.classifier.threshold if rules.classifier else 1.0
        self._vocabulary_threshold = (rules.classifier.vocabulary_threshold if rules.classifier
                                      else 1.0)
        self._vocabulary = regex.compile(rules.classifier.vocabulary if rules.classifier else r"$^")
        self._rule_floor = rules.classifier.rule_floor if rules.classifier else 0.0
        self._laughter = regex.compile(rules.laughter)
        self._rules = [
            _Rule(category, regex.compile(
                f"(?:{rule.pattern}){{e<={rule.typos}}}" if rule.typos else rule.pattern,
                regex.BESTMATCH if rule.typos else 0), rule.past, category in _REPORTABLE,
                Prefilter.of(rule.pattern, rule.typos))
            for category in CATEGORIES for rule in rules.categories.get(category, ())
        ]
        negation = rules.negation
        self._cues = regex.compile(rf"\b(?:{negation.cues})\b")
        self._not_negating = regex.compile(negation.not_negating)
        self._window = negation.window
        self._safe = [(regex.compile(p), Prefilter.of(p)) for p in rules.safe_phrases]
        self._distant_past = regex.compile(rules.distant_past)
        self._recurrence = regex.compile(rules.recurrence)
        self._present_time = regex.compile(rules.present_time)
        self._reported = regex.compile(rules.reported_speech)

    @classmethod
    def from_file(cls, path: Path, cache_dir: Path | None = None) -> Screener:
        """The rules in `path`, with the classifier trained on the examples they name.

        With a `cache_dir`, the trained classifier is kept there and trained again only when the
        examples, the rules, the screening code or a library version change.
        """
        rules = load_rules(path)
        classifier = None
        if (settings := rules.classifier) is not None:
            folder = path.parent / settings.examples
            classifier = cached_classifier(
                cache_dir, cache_key(path, example_files(folder)),
                lambda: CrisisClassifier(load_examples(folder), normalise, settings.regularisation,
                                         rules.negation, embeddings=settings.embeddings))
        return cls(rules, classifier)

    def screen(self, text: str) -> Screening:
        normal = normalise(text)
        if not normal:
            return Screening(False)
        found = self._first_rule(normal)
        if self.classifier is None or (found and not classifier_reads_all(text)):
            return Screening(True, found[0]) if found else Screening(False)
        whole, *each = self._read(text, normal)
        if found and not self.laughs(text) and self._reaches(whole, each, self._rule_floor):
            return Screening(True, found[0])
        if self._reaches(whole, each, self.needed(normal)):
            return Screening(True, self.classifier.category(normal, whole))
        return Screening(False)

    def laughs(self, text: str) -> bool:
        """Whether the message, as written, laughs: its rules' matches are the classifier's call."""
        return self._laughter.search(text) is not None

    def needed(self, normal: str) -> float:
        """The classifier probability that flags this (normalised) message: less when it uses a
        word of crisis."""
        if self._vocabulary.search(normal):
            return min(self._threshold, self._vocabulary_threshold)
        return self._threshold

    def classifier_probability(self, text: str, normal: str) -> float:
        """The classifier's probability for the message, or more when one of its sentences is
        worrying: read whole, one crisis sentence in a long reflection is diluted; read alone, a
        sentence loses what places it ("back then", "I don't think that now"). The score leans
        towards the most worrying sentence (`_WHOLE_WEIGHT`), so that one crisis sentence after
        four calm ones is still heard.
        """
        classifier = self.classifier
        assert classifier is not None
        whole, *each = self._read(text, normal)
        if len(text) <= _READ_TOGETHER:  # one batch for the encoder, which pads to the longest
            whole_probability, *each_probabilities = classifier.finish([whole, *each])
        else:
            [whole_probability] = classifier.finish([whole])
            each_probabilities = classifier.finish(each) if each else []
        return _combined(whole_probability, each_probabilities)

    def classifier_reaches(self, text: str, normal: str, needed: float) -> bool:
        """Whether `classifier_probability` reaches `needed`, with the sentence encoder (most of
        the cost) run only where the n-grams leave the answer open: for most everyday messages,
        not at all; for most others, over the whole message and the few sentences that could
        tip it; for a long message that only a sentence can tip, over those sentences, most
        worrying first, and the whole message only when they leave the answer open."""
        whole, *each = self._read(text, normal)
        return self._reaches(whole, each, needed)

    def _reaches(self, whole: Reading, each: list[Reading], needed: float) -> bool:
        # The least the score can be, whatever the sentence encoder makes of it: a long message
        # with a rule's match is cleared of the rule floor by its crisis sentence's n-grams.
        if _combined(whole.floor, [part.floor for part in each]) >= needed:
            return True
        ceilings = [part.ceiling for part in each]
        if _combined(whole.ceiling, ceilings) < needed:
            return False
        if whole.ceiling >= needed or not whole.embedded:
            return self._reaches_whole_first(whole, each, needed)
        return self._reaches_sentences_first(whole, each, needed)

    def _reaches_whole_first(self, whole: Reading, each: list[Reading], needed: float,
                             whole_probability: float | None = None) -> bool:
        classifier = self.classifier
        assert classifier is not None
        if whole_probability is None:
            [whole_probability] = classifier.finish([whole])
        if whole_probability >= needed:  # the score is never under the whole message's
            return True
        # Under `needed` as a whole, the message reaches it only through a sentence that can.
        able = [part for part in each if _combined(whole_probability, [part.ceiling]) >= needed]
        return bool(able) and _combined(whole_probability, classifier.finish(able)) >= needed

    def _reaches_sentences_first(self, whole: Reading, each: list[Reading], needed: float) -> bool:
        """For a message that cannot reach `needed` as a whole: there the whole counts a fifth
        beside its most worrying sentence, so the sentences that could tip it are read first,
        most worrying first (by the n-grams' ceiling), until one settles it or none can; the
        whole message (600 characters through the encoder, as dear as several sentences) is read
        only when they leave it open. Read alone, a sentence's probability can differ in the last
        bits from the one it gets in a batch of several (`_reaches_whole_first`), so a score
        within `_BATCH_MARGIN` of `needed` is worked out that way instead."""
        classifier = self.classifier
        assert classifier is not None
        tipping = sorted((part for part in each if _combined(whole.ceiling, [part.ceiling]) >= needed),
                         key=lambda part: part.ceiling, reverse=True)
        most = 0.0  # the most worrying sentence's probability, of those read
        read: set[str] = set()
        for part in tipping:
            if part.ceiling <= most:  # neither can the rest: their ceilings are lower still
                break
            if part.text in read:
                continue
            read.add(part.text)
            [probability] = classifier.finish([part])
            most = max(most, probability)
            if _combined(whole.floor, [most]) >= needed + _BATCH_MARGIN:
                return True
        if _combined(whole.ceiling, [most]) < needed - _BATCH_MARGIN:
            return False
        [whole_probability] = classifier.finish([whole])
        score = _combined(whole_probability, [most])
        if abs(score - needed) > _BATCH_MARGIN:
            return score >= needed
        return self._reaches_whole_first(whole, each, needed, whole_probability)

    def _read(self, text: str, normal: str) -> list[Reading]:
        """The message and, when it has several, its sentences, as the n-grams read them."""
        assert self.classifier is not None
        parts = sentences(text)
        return self.classifier.read([text, *parts], [normal, *map(normalise, parts)])

    def explain(self, text: str) -> tuple[Category, str, str] | None:
        """The first rule that fires: its category, its pattern and the words it matched."""
        normal = normalise(text)
        return self._first_rule(normal) if normal else None

    def _first_rule(self, normal: str) -> tuple[Category, str, str] | None:
        """The first rule, in the file's order, with a match that is not dismissed.

        A rule whose prefilter says it cannot match is skipped (bot/safety/prefilter.py); the
        others run only where a match can be, and what is found, and in which order, is as if
        every rule ran over the whole text. tests/safety/test_rule_shortcuts.py holds it to that.
        """
        message = Message(normal)
        safe_spans: list[tuple[int, int]] | None = None  # worked out for the first match only
        for rule in self._rules:
            for match in message.matches(rule.prefilter, rule.pattern):
                if safe_spans is None:
                    safe_spans = [m.span() for pattern, prefilter in self._safe
                                  for m in message.matches(prefilter, pattern)]
                if not self._dismissed(normal, match.span(), safe_spans, rule.past,
                                       rule.reportable):
                    return rule.category, rule.pattern.pattern, match.group()
        return None

    def _dismissed(self, text: str, span: tuple[int, int], safe_spans: list[tuple[int, int]],
                   past: bool, reportable: bool) -> bool:
        start, end = span
        if any(s <= start and end <= e for s, e in safe_spans):
            return True
        before = text[:start]
        # Negation counts only within the phrase's own sentence (a comma does not end it:
        # "ich habe nicht vor, mich umzubringen").
        sentence_start = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        words = _WORD.findall(before[sentence_start:])[-self._window:]
        lead = " ".join(words)
        if words and self._cues.search(lead) and not self._not_negating.search(
                " ".join(_WORD.findall(before)[-self._window - 2:]) + " " + text[start:end]):
            return True
        if reportable:
            # Only in the phrase's own clause: in "my sister says I sound fine but I want to die",
            # the wish is the client's. Voices are never someone else's words.
            clause_start = max((m.end() for m in _CONTRAST.finditer(text, 0, start)), default=0)
            if self._reported.search(text[clause_start:start]) and not _VOICES.search(
                    text[clause_start:end]):
                return True
        if past:
            sentence = _around(text, start, end, _SENTENCE_END)
            if (self._distant_past.search(sentence) and not self._recurrence.search(sentence)
                    and not self._present_time.search(_around(text, start, end, _CONTRAST))):
                return True
        return False


def _combined(whole: float, each: list[float]) -> float:
    """A message's score from its own and its sentences' (see `classifier_probability`)."""
    if not each:
        return whole
    return max(whole, _WHOLE_WEIGHT * whole + (1 - _WHOLE_WEIGHT) * max(each))


_SENTENCE_BREAK = regex.compile(r"(?<=[.!?;])\s+|\n+")


def _sentence_parts(text: str) -> list[str]:
    parts = [part.strip() for part in _SENTENCE_BREAK.split(text)]
    return [part for part in parts if len(part.split()) >= 2]


def sentences(text: str) -> list[str]:
    """A message's sentences of two words or more, when it has two or more of them."""
    parts = _sentence_parts(text)
    if len(parts) > 2 * _SENTENCES_READ:
        parts = parts[:_SENTENCES_READ] + parts[-_SENTENCES_READ:]
    return parts if len(parts) >= 2 else []


def classifier_reads_all(text: str) -> bool:
    """Whether the classifier reads every sentence of the message (see `sentences`). In a longer
    one a rule's match stands by itself: the classifier cannot judge a sentence it never read."""
    return len(_sentence_parts(text)) <= 2 * _SENTENCES_READ


def _around(text: str, start: int, end: int, boundary: regex.Pattern[str]) -> str:
    """The sentence or clause (by `boundary`) that holds text[start:end]."""
    begin = max((m.end() for m in boundary.finditer(text, 0, start)), default=0)
    finish = boundary.search(text, end)
    return text[begin:finish.start() if finish else len(text)]


_screeners: dict[tuple[Path, tuple[float, ...]], Screener] = {}


def cached_screener(path: Path, cache_dir: Path | None = None) -> Screener:
    """One screener per rules file and examples as they are now, in this process (tests build
    many bots); the trained classifier is also kept in `cache_dir` for the next start."""
    files = [path, *sorted(path.parent.glob("safety*/*.yaml"))]  # the rules and their examples
    stamps = tuple(p.stat().st_mtime for p in files if p.exists())
    key = (path.resolve(), stamps)
    if key not in _screeners:  # the same classifier whichever cache folder it came from
        _screeners[key] = Screener.from_file(path, cache_dir)
    return _screeners[key]
