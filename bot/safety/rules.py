"""The screening rules a practice can extend, as prompts/safety.yaml, checked strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import regex
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.yamlfile import read_yaml

Category = Literal["suicidal", "self_harm", "danger_from_person", "medical_emergency"]
CATEGORIES: tuple[Category, ...] = ("suicidal", "self_harm", "danger_from_person", "medical_emergency")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiles(pattern: str) -> str:
    try:
        regex.compile(pattern)
    except regex.error as error:
        raise ValueError(f"not a valid pattern ({error}): {pattern}") from None
    return pattern


class Rule(Strict):
    """A pattern over normalised text (lower case, no accents or apostrophes, single spaces)."""

    pattern: str
    # Typing mistakes tolerated inside the phrase (0 for short words, where a typo is a new word).
    typos: int = Field(default=0, ge=0, le=2)
    # A past-tense phrase: ignored when the same sentence places it far back ("at 15").
    past: bool = False

    _check = field_validator("pattern")(classmethod(lambda cls, value: _compiles(value)))


class Negation(Strict):
    """Words that, just before a phrase, turn it around ("I would never hurt myself")."""

    cues: str
    window: int = Field(default=3, ge=1, le=8)
    # Look like negation but are not ("no longer want to live", "not sure I can go on").
    not_negating: str = r"$^"

    _check = field_validator("cues", "not_negating")(classmethod(lambda cls, value: _compiles(value)))


class ClassifierSettings(Strict):
    examples: str = "safety-examples"  # a folder beside safety.yaml
    threshold: float = Field(default=0.55, gt=0, lt=1)
    # A lower threshold for messages that use a word of crisis (death, pills, blood, a knife):
    # the classifier's doubt about them is worth a therapist's look, about a sunset it is not.
    vocabulary_threshold: float = Field(default=0.55, gt=0, lt=1)
    vocabulary: str = r"$^"
    # A rule's match stands unless the classifier gives the whole message less than this: what
    # it is all but sure of ("a patient's overdose at work", "two years clean from cutting") is a
    # look-alike it has learnt, not a miss. Cross-validation found no crisis message under 0.03.
    rule_floor: float = Field(default=0.02, ge=0, lt=1)
    regularisation: float = Field(default=10, gt=0)
    # Sentence embeddings beside the n-grams (see bot/safety/classifier.py); off, n-grams alone.
    embeddings: bool = True

    _check = field_validator("vocabulary")(classmethod(lambda cls, value: _compiles(value)))


class SafetyRules(Strict):
    classifier: ClassifierSettings | None = None
    resources: dict[str, str]
    categories: dict[Category, tuple[Rule, ...]]
    negation: Negation
    # Phrases that are safe as a whole, e.g. "not suicidal"; a match inside one is dropped.
    safe_phrases: tuple[str, ...] = ()
    # Markers of a long-ago memory ("when I was 15", "years ago") for rules marked past.
    distant_past: str = r"$^"
    # ...unless the same sentence brings it back ("again", "still", "is back")...
    recurrence: str = r"$^"
    # ...or the phrase's own clause places it now ("now", "tonight"). Only its own clause: in
    # "I used to want to die, now I want to live", "now" begins the contrast, not the wish.
    present_time: str = r"$^"
    # Someone else's words ("my son says 'kms' when he loses"): suicidal and self-harm rules that
    # match after them, in the same clause, are left to the classifier.
    reported_speech: str = r"$^"
    # A laugh in the message as written ("lol", "jaja", "😂"): a rule's match is left to the
    # classifier ("kms 😂 I put salt in my coffee"), which still hears "lol I have the pills ready".
    laughter: str = r"$^"

    @field_validator("resources")
    @classmethod
    def _has_default(cls, value: dict[str, str]) -> dict[str, str]:
        if "default" not in value:
            raise ValueError("resources need a 'default' entry, used when a client's country is unknown")
        return value

    @field_validator("safe_phrases")
    @classmethod
    def _safe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_compiles(p) for p in value)

    @field_validator("distant_past", "recurrence", "present_time", "reported_speech", "laughter")
    @classmethod
    def _past(cls, value: str) -> str:
        return _compiles(value)


class SafetyRulesError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_rules(path: Path) -> SafetyRules:
    try:
        data = read_yaml(path)
        return SafetyRules.model_validate(data)
    except FileNotFoundError:
        raise SafetyRulesError([f"{path}: no such file"]) from None
    except yaml.YAMLError as error:
        raise SafetyRulesError([f"{path.name}: not valid YAML ({error})"]) from None
    except ValidationError as error:
        raise SafetyRulesError([
            f"{path.name}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        ]) from None
