"""What a screening rule needs a message to hold before it is worth running over it.

Every message is screened as it arrives, and most rules cannot match most messages: a rule
about pills needs "pills", "tablets" or "meds" somewhere in the text. Running each pattern over
all of a 4,096-character message costs far more than asking first whether its words are there,
and the rules that tolerate typos (fuzzy patterns) cost the most. So for each pattern this
module derives, from the pattern itself, literals of which every match holds at least one; a
pattern none of whose literals is in the message is not run, and decides nothing either way.

For a pattern that tolerates k typos, the phrase is cut into k + 1 pieces: k typos spoil at
most k of them, so every match holds one piece unspoilt (the pigeonhole principle). And since
a match can only reach so far from that piece (as many spaces and stops as the pattern has,
plus k), the pattern is tried first in windows around the pieces it finds; only when a window
holds a match is it run over the whole message, exactly as before, so that what it finds and
in which order never changes.

Nothing here is hand-written per rule, so a practice can add patterns as it always has. A
pattern in syntax this module does not read (anything beyond literals, classes, groups,
alternation, repeats, \\b and plain lookarounds) simply has no prefilter and always runs.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from re import _constants as sre  # the standard library's own reading of a pattern
from re import _parser
from typing import Any

import regex

Item = tuple[Any, Any]  # one node of the standard library's parse of a pattern
Literals = frozenset[str]

# Syntax that `re` (whose parser this module reads) and `regex` (which screens) read alike.
# Anything else (named lists, POSIX classes, \p{..}, inline flags, nested sets) is not
# prefiltered, rather than risk a reading that differs.
_PLAIN_SYNTAX = regex.compile(
    r"""(?:
        \\[bBwWdDsSnt.\\()\[\]{}|?*+^$/'"-]           # escapes of one meaning in both
      | \[\^?(?:\\[wWdDsSnt.\\\]\[^-]|[^\\\[\]])+\]   # a plain character class
      | \((?:\?(?::|!|=|<!|<=)|(?!\?))                 # groups and lookarounds, no flags or names
      | \{\d+(?:,\d*)?\}                              # a counted repeat
      | [)|?*+.^$]
      | [^\\\[\](){}|?*+.^$]                          # a plain character
    )*""",
    regex.VERBOSE,
)
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}
_ZERO_WIDTH = {sre.AT, sre.ASSERT, sre.ASSERT_NOT}
_WORD_CHAR = regex.compile(r"\w")
_NON_WORD = regex.compile(r"\W")


def parsed(pattern: str) -> list[Item] | None:
    """The pattern's items, or None when it uses syntax not read here."""
    if not _PLAIN_SYNTAX.fullmatch(pattern):
        return None
    try:
        return list(_parser.parse(pattern))
    except re.error:
        return None


def needs(items: Iterable[Item]) -> Literals | None:
    """Literals of which every match of `items` holds one (None: no such literals known)."""
    best: Literals | None = None
    run = frozenset({""})  # what the consecutive characters so far can be, in every match
    for op, av in items:
        if op in _ZERO_WIDTH:  # consumes nothing: the characters on either side stay adjacent
            continue
        spelt = _spellings(op, av)
        if spelt is not None and len(run) * len(spelt) <= _MOST_SPELLINGS:
            run = frozenset(a + b for a in run for b in spelt)
            continue
        best = _better(best, run if min(map(len, run)) else None)
        run = frozenset({""})
        best = _better(best, _item_needs(op, av))
    return _better(best, run if min(map(len, run)) else None)


_MOST_SPELLINGS = 24


def _spellings(op: Any, av: Any) -> Literals | None:
    """Every string an item can match, when it is a short list ("a", [ao], (me|my))."""
    if op is sre.LITERAL:
        return frozenset({chr(av)})
    if op is sre.IN:
        chars: set[str] = set()
        for member, value in av:
            if member is sre.LITERAL:
                chars.add(chr(value))
            elif member is sre.RANGE and value[1] - value[0] < 10:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return frozenset(chars)
    if op is sre.SUBPATTERN and not av[1] and not av[2]:
        return _spelt_sequence(av[3])
    if op is sre.BRANCH:
        each = [_spelt_sequence(branch) for branch in av[1]]
        if any(e is None for e in each):
            return None
        union = frozenset().union(*each)  # type: ignore[arg-type]
        return union if len(union) <= _MOST_SPELLINGS else None
    return None


def _spelt_sequence(items: Iterable[Item]) -> Literals | None:
    run = frozenset({""})
    for op, av in items:
        spelt = _spellings(op, av)
        if spelt is None or len(run) * len(spelt) > _MOST_SPELLINGS:
            return None
        run = frozenset(a + b for a in run for b in spelt)
    return run


def _item_needs(op: Any, av: Any) -> Literals | None:
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, inner = av
        return None if add_flags or del_flags else needs(inner)
    if op is sre.ATOMIC_GROUP:
        return needs(av)
    if op is sre.BRANCH:
        branches = [needs(branch) for branch in av[1]]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*branches)  # type: ignore[arg-type]
    if op in _REPEATS:
        low, _high, inner = av
        return needs(inner) if low >= 1 else None
    return None


def _score(literals: Literals) -> tuple[int, int]:
    """Longer literals are rarer; fewer of them are quicker to look for."""
    return min(map(len, literals)), -len(literals)


def _better(a: Literals | None, b: Literals | None) -> Literals | None:
    if a is None or b is None:
        return a if b is None else b
    return a if _score(a) >= _score(b) else b


def pieces(items: Sequence[Item], typos: int) -> Literals | None:
    """Literals of which every match of `items` with up to `typos` mistakes holds one unspoilt.

    The items are cut into typos + 1 runs in every possible way; a mistake falls inside at
    most one run, so one run matches exactly and holds one of its literals. The cut whose
    shortest literal is longest is kept.
    """
    items = _flattened(items)
    if len(items) == 1 and items[0][0] is sre.BRANCH:  # each alternative has its own typos
        each = [pieces(branch, typos) for branch in items[0][1][1]]
        return None if any(e is None for e in each) else frozenset().union(*each)  # type: ignore[arg-type]
    best: Literals | None = None
    for cuts in itertools.combinations(range(1, len(items)), typos):
        bounds = (0, *cuts, len(items))
        runs = [needs(items[a:b]) for a, b in itertools.pairwise(bounds)]
        if all(run is not None for run in runs):
            best = _better(best, frozenset().union(*runs))  # type: ignore[arg-type]
    return best


def _flattened(items: Sequence[Item]) -> list[Item]:
    """Plain groups opened into the sequence around them, so that cuts can fall inside them."""
    flat: list[Item] = []
    for op, av in items:
        if op is sre.SUBPATTERN and not av[1] and not av[2]:
            inner = list(av[3])
            if not (len(inner) == 1 and inner[0][0] is sre.BRANCH):
                flat.extend(_flattened(inner))
                continue
            op, av = inner[0]
        flat.append((op, av))
    return flat


def reach(items: Iterable[Item]) -> int | None:
    """How many characters that are not word characters (spaces, stops) a match can hold at
    most, or None when there is no bound or the pattern looks beyond its match (lookarounds)."""
    total = 0
    for op, av in items:
        if op is sre.LITERAL:
            width: int | None = 0 if _WORD_CHAR.match(chr(av)) else 1
        elif op is sre.IN:
            width = 0 if _word_class(av) else 1
        elif op in (sre.NOT_LITERAL, sre.ANY):
            width = 1
        elif op is sre.AT:
            width = 0
        elif op is sre.SUBPATTERN:
            width = None if av[1] or av[2] else reach(av[3])
        elif op is sre.BRANCH:
            each = [reach(branch) for branch in av[1]]
            width = None if any(e is None for e in each) else max(each)  # type: ignore[type-var]
        elif op in _REPEATS:
            _low, high, inner = av
            one = reach(inner)
            width = None if one is None else 0 if one == 0 else None if high is sre.MAXREPEAT \
                else one * high
        else:
            return None
        if width is None:
            return None
        total += width
    return total


def _word_class(members: Iterable[Item]) -> bool:
    """A class that only ever matches word characters ([a-z], \\w, [ao])."""
    for op, av in members:
        if op is sre.LITERAL and _WORD_CHAR.match(chr(av)):
            continue
        if op is sre.RANGE and all(_WORD_CHAR.match(chr(c)) for c in range(av[0], av[1] + 1)):
            continue
        if op is sre.CATEGORY and av in (sre.CATEGORY_WORD, sre.CATEGORY_DIGIT):
            continue
        return False
    return True


def _anchored(items: Iterable[Item]) -> bool:
    """Whether the pattern has an anchor other than a word boundary (^, $), whose meaning
    would change at a window's edge."""
    for op, av in items:
        if op is sre.AT and av not in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            return True
        if op is sre.SUBPATTERN and _anchored(av[3]):
            return True
        if op is sre.BRANCH and any(_anchored(branch) for branch in av[1]):
            return True
        if op in _REPEATS and _anchored(av[2]):
            return True
    return False


@dataclass(frozen=True)
class Prefilter:
    """What one pattern needs of a text.

    `literals`: one of them is in every match (None: no prefilter, the pattern always runs).
    `width` and `reach`: how many characters, and how many non-word characters (spaces,
    stops), a match spans at most, typos included (None: no bound known). With either, the
    pattern is only tried near the literals it needs. `typos`: whether the pattern tolerates
    typos, which it then looks for as the best match over the whole text, so that it is only
    tried near the literals to know whether to run it over the whole text.
    """

    literals: tuple[str, ...] | None
    width: int | None = None
    reach: int | None = None
    typos: bool = False

    @classmethod
    def of(cls, pattern: str, typos: int = 0) -> Prefilter:
        items = parsed(pattern)
        if items is None:
            return cls(None)
        literals = needs(items) if typos == 0 else pieces(items, typos)
        if literals is None:
            return cls(None)
        if _anchored(items):
            return cls(tuple(sorted(literals)))
        most = _parser.parse(pattern).getwidth()[1]
        width = None if most >= sre.MAXREPEAT else most + typos
        window = reach(items)
        return cls(tuple(sorted(literals)), width, None if window is None else window + typos,
                   typos > 0)

    @cached_property
    def trigrams(self) -> tuple[frozenset[str], ...]:
        """Each literal's three-letter sequences (none for a literal shorter than three)."""
        return tuple(frozenset(literal[i:i + 3] for i in range(len(literal) - 2))
                     for literal in self.literals or ())


class Message:
    """A normalised message with what the prefilters ask of it, worked out once and only when
    asked: which three-letter sequences it has, and where its non-word characters are."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._trigrams: set[str] | None = None
        self._non_word: list[int] | None = None

    def holding(self, prefilter: Prefilter) -> list[str]:
        """The prefilter's literals that may be in the text: a literal left out is certainly
        not (one kept may be a near miss, all its three-letter sequences there in some order).
        A long text is asked by its three-letter sequences, one set against another, quicker
        than looking for each of a rule's literals in turn."""
        text = self.text
        literals = prefilter.literals or ()
        if len(text) < 256:
            return [literal for literal in literals if literal in text]
        if self._trigrams is None:
            self._trigrams = set(map("".join, zip(text, text[1:], text[2:], strict=False)))
        trigrams = self._trigrams
        return [literal for literal, needed in zip(literals, prefilter.trigrams, strict=True)
                if (needed <= trigrams if needed else literal in text)]

    def matches(self, prefilter: Prefilter, pattern: regex.Pattern[str]) -> Iterator[regex.Match[str]]:
        """`pattern.finditer(text, overlapped=False)`, the same matches in the same order, found
        without running the pattern where it cannot match."""
        text = self.text
        if prefilter.literals is None:
            yield from pattern.finditer(text, overlapped=False)
            return
        present = self.holding(prefilter)
        if not present:
            return
        if prefilter.width is None and prefilter.reach is None:
            yield from pattern.finditer(text, overlapped=False)
            return
        windows = self._windows(present, prefilter.width, prefilter.reach)
        if prefilter.typos:  # the best match over the whole text: found there, if anywhere
            if any(pattern.search(text, start, end) for start, end in windows):
                yield from pattern.finditer(text, overlapped=False)
            return
        # No match starts outside the windows, and each lies whole inside one: window by window,
        # the engine meets the same characters, and so picks the same matches.
        for start, end in windows:
            yield from pattern.finditer(text, start, end, overlapped=False)

    def _windows(self, literals: list[str], width: int | None,
                 reach: int | None) -> list[tuple[int, int]]:
        """Stretches of text, in order and apart, that hold every match containing one of
        `literals`.

        A match spans at most `width` characters, so it lies within `width` of the literal's
        start; and at most `reach` non-word characters, so it lies between the non-word
        character `reach` + 1 before the literal and the one `reach` + 1 from its start. Each
        window begins just after a non-word character and ends on one, so that a word boundary
        at its edges reads as it does in the whole text.
        """
        text = self.text
        if self._non_word is None:
            self._non_word = [m.start() for m in _NON_WORD.finditer(text)]
        stops = self._non_word
        windows = []
        for literal in literals:
            at = text.find(literal)
            while at >= 0:
                start, end = 0, len(text)
                if width is not None:
                    i = bisect.bisect_left(stops, at - width)  # the last stop before that + 1
                    start = stops[i - 1] + 1 if i > 0 else 0
                    j = bisect.bisect_left(stops, at + width)
                    end = stops[j] if j < len(stops) else len(text)
                if reach is not None:
                    i = bisect.bisect_left(stops, at)
                    start = max(start, stops[i - reach - 1] + 1 if i - reach - 1 >= 0 else 0)
                    end = min(end, stops[i + reach] if i + reach < len(stops) else len(text))
                windows.append((start, end))
                at = text.find(literal, at + 1)
        windows.sort()
        merged: list[tuple[int, int]] = []
        for start, end in windows:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged
