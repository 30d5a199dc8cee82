"""The crisis screener: is this message crisis language, and of which kind?

Rules are patterns over a normalised form of the text, so "I dont wanna b here anymore",
"I don’t want to be here any more" and "I DON'T WANT TO BE HERE ANYMORE!!!" read alike.
A match is dropped when a negation cue stands just before it ("I would never hurt myself"),
when it lies inside a known safe phrase ("not suicidal"), or, for past-tense rules, when the
sentence places it long ago ("when I was 15 I wanted to die"). When in doubt, it flags:
a false alarm costs a therapist a minute, a miss can cost far more.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

from bot.safety.rules import CATEGORIES, Category, SafetyRules

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s", "7": "t"})
_WORD = regex.compile(r"\w+")
_SENTENCE_END = regex.compile(r"[.!?;\n]")


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
    folded = regex.sub(r"[^\w\s.!?;\n]", " ", folded)
    return regex.sub(r"[ \t]+", " ", folded).strip()


@dataclass(frozen=True)
class Screening:
    crisis: bool
    category: Category | None = None

    def as_json(self, text: str) -> dict[str, object]:
        return {"text": text, "crisis": self.crisis, "category": self.category}


class Screener:
    def __init__(self, rules: SafetyRules) -> None:
        self.rules = rules
        self._patterns = [
            (category, regex.compile(
                f"(?:{rule.pattern}){{e<={rule.typos}}}" if rule.typos else rule.pattern,
                regex.BESTMATCH if rule.typos else 0), rule.past)
            for category in CATEGORIES for rule in rules.categories.get(category, ())
        ]
        negation = rules.negation
        self._cues = regex.compile(rf"\b(?:{negation.cues})\b")
        self._not_negating = regex.compile(negation.not_negating)
        self._window = negation.window
        self._safe = [regex.compile(p) for p in rules.safe_phrases]
        self._distant_past = regex.compile(rules.distant_past)

    def screen(self, text: str) -> Screening:
        normal = normalise(text)
        if not normal:
            return Screening(False)
        safe_spans = [m.span() for pattern in self._safe for m in pattern.finditer(normal)]
        for category, pattern, past in self._patterns:
            for match in pattern.finditer(normal, overlapped=False):
                if self._dismissed(normal, match.span(), safe_spans, past):
                    continue
                return Screening(True, category)
        return Screening(False)

    def _dismissed(self, text: str, span: tuple[int, int], safe_spans: list[tuple[int, int]],
                   past: bool) -> bool:
        start, end = span
        if any(s <= start and end <= e for s, e in safe_spans):
            return True
        before = text[:start]
        # Negation counts only within the phrase's own sentence.
        sentence_start = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        words = _WORD.findall(before[sentence_start:])[-self._window:]
        lead = " ".join(words)
        if words and self._cues.search(lead) and not self._not_negating.search(
                " ".join(_WORD.findall(before)[-self._window - 2:]) + " " + text[start:end]):
            return True
        if past:
            sentence_start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
            sentence_end_match = _SENTENCE_END.search(text, end)
            sentence = text[sentence_start:sentence_end_match.start() if sentence_end_match else len(text)]
            if self._distant_past.search(sentence):
                return True
        return False
