"""The rules' shortcuts (bot/safety/prefilter.py) change how fast a message is screened, never what
is decided: the same rule fires, on the same words, as when every rule runs over the whole text."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.long_messages import POSITIONS, example_messages, joined, placed, telegram_length_messages
from bot.safety.prefilter import Message, Prefilter
from bot.safety.rules import load_rules
from bot.safety.screening import Screener, normalise
from tests.conftest import ROOT

EXAMPLES = ROOT / "prompts" / "safety-examples"


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(load_rules(ROOT / "prompts" / "safety.yaml"))  # the rules alone


def reference(screener: Screener, text: str) -> tuple[str, str, str] | None:
    """Every pattern over the whole text, in the file's order: the screening without shortcuts."""
    normal = normalise(text)
    safe = [m.span() for pattern, _ in screener._safe for m in pattern.finditer(normal)]
    for rule in screener._rules:
        for match in rule.pattern.finditer(normal, overlapped=False):
            if not screener._dismissed(normal, match.span(), safe, rule.past, rule.reportable):
                return rule.category, rule.pattern.pattern, match.group()
    return None


def longer_messages(path: Path) -> list[str]:
    """Each crisis message of a set run together with two others of the set that are not,
    first, in the middle or last in turn; and the others three at a time."""
    labelled = example_messages(path)
    crisis = [m["text"] for m in labelled if m["crisis"]]
    calm = [m["text"] for m in labelled if not m["crisis"]]
    fillers = itertools.cycle(calm)
    built = [placed(text, [next(fillers) for _ in range(2)], POSITIONS[n % 3])
             for n, text in enumerate(crisis)]
    return built + [joined(calm[n:n + 3]) for n in range(0, len(calm), 3)]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_is_decided_as_by_every_rule_over_the_whole_text(screener: Screener,
                                                                      path: Path) -> None:
    """Each example message, and longer ones built from them, fire the same rule on the same words."""
    texts = [m["text"] for m in example_messages(path)] + longer_messages(path)
    differ = [text for text in texts if screener.explain(text) != reference(screener, text)]
    assert differ == []


def test_messages_of_telegrams_longest_are_decided_as_by_every_rule(screener: Screener) -> None:
    """4,096-character reflections, everyday or with a crisis message anywhere, decide alike."""
    texts = [text for kind in telegram_length_messages(per_language=2).values() for text in kind]
    fired = [screener.explain(text) for text in texts]
    assert fired == [reference(screener, text) for text in texts]
    assert sum(f is not None for f in fired) >= 15  # crisis messages placed in them are found


def test_a_pattern_with_typos_is_looked_for_by_pieces_one_of_which_survives_any_typo() -> None:
    """'hurt my self' with two typos: one of three pieces is always left whole."""
    pieces = Prefilter.of(r"\bhurt my ?self\b", typos=2)
    assert len(pieces.literals or ()) == 3
    pattern = regex.compile(r"(?:\bhurt my ?self\b){e<=2}", regex.BESTMATCH)
    for typed in ("i hurt myself", "i hrut mysef", "i hurtt my slef", "ich hurt mi sef"):
        assert bool(list(Message(typed).matches(pieces, pattern))) is bool(pattern.search(typed))
    assert list(Message("a quiet walk by the water").matches(pieces, pattern)) == []


def test_syntax_the_prefilter_does_not_read_runs_every_time() -> None:
    """A practice's pattern in syntax beyond the plain is never skipped, only run."""
    assert Prefilter.of(r"\bpills\b").literals == ("pills",)
    assert Prefilter.of(r"(?i)pills").literals is None
    assert Prefilter.of(r"\p{L}+ pills").literals is None
    assert Prefilter.of(r"\bend( it)?\b|x*").literals is None  # the empty match needs nothing


# Words of the rules and near misses of them, so that generated texts come close to matching.
_RULE_WORDS = sorted({word for rules in load_rules(ROOT / "prompts" / "safety.yaml").categories.values()
                      for rule in rules for word in regex.findall(r"[a-z]{2,}", rule.pattern)})
_fragments = st.one_of(
    st.sampled_from(_RULE_WORDS),
    st.sampled_from(_RULE_WORDS).map(lambda w: w[1:] or w),
    st.sampled_from(_RULE_WORDS).map(lambda w: w[:-1] + "x"),
    st.sampled_from(["my", "self", "myself", "to", "i", "dont", "the", "a", "123"]),
)
_texts = st.lists(st.tuples(_fragments, st.sampled_from([" ", " ", " ", "", ". ", ", ", "\n"])),
                  min_size=1, max_size=80).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=60, deadline=None)
@given(_texts)
def test_every_rule_finds_the_same_matches_as_over_the_whole_text(screener: Screener, text: str) -> None:
    """Whatever the text, each rule finds the same matches, in the same order, as run over all of it."""
    message = Message(text)
    for rule in screener._rules:
        expected = [(m.span(), m.group()) for m in rule.pattern.finditer(text, overlapped=False)]
        assert [(m.span(), m.group()) for m in message.matches(rule.prefilter, rule.pattern)] == expected
