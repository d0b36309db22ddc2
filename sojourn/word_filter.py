"""The word filter: a pure function from (rules, allow list, prompt) to a verdict with the match's span.

Normalise first, then match, as AI Horde and Discord's AutoMod do. Normalising folds the tricks
people use to slip a word past a list: Unicode compatibility forms (NFKC: full-width letters,
ligatures), case, accents, zero-width and control characters, Cyrillic and Greek look-alikes,
leetspeak (`0→o`, `3→e`, `4→a`, `5→s`, `7→t`, `@→a`, `$→s`; `1` stands for `i` or `l`), letters
spelled apart (`n.s.f.w`, `s e x`), and weights (`(word:1.3)`, `word::2`: punctuation separates
words). Matching is by whole word or phrase, so "assassin", "grass" and "Scunthorpe" never match
a rule "ass" or "cunt"; a rule may put `*` at either end to match inside words (`*porn*`). A
letter stretched out (`seeex`) matches the rule's letter, never fewer: "as" does not match "ass".
An allow-listed word never matches. Every position in the normalised text remembers where it came
from, so a verdict names the part of the prompt the user typed.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# Cyrillic and Greek letters that look like Latin ones (after case folding), the common subset of
# Unicode's confusables that NFKC leaves alone.
LOOK_ALIKES = dict(
    zip(
        "аеорсухѕіјкмтвнαοεικνρτυχ",
        "aeopcyxsijkmtbhaoeiknptux",
        strict=True,
    )
)
AMBIGUOUS_ONE = "1"  # `1` is `i` or `l`: kept as is, and both letters match it


class WordAction(enum.StrEnum):
    BLOCK = "block"
    WARN = "warn"


@dataclass(frozen=True)
class WordRule:
    """One entry of a server's list: a word or phrase, `*` at either end to match inside words."""

    pattern: str
    action: WordAction = WordAction.BLOCK

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern)


@dataclass(frozen=True)
class WordMatch:
    rule: WordRule
    start: int  # the span in the text as typed
    end: int
    typed: str  # that part of the text

    def describe(self) -> str:
        return f'"{self.typed}" matches the word rule "{self.rule.pattern}" ({self.rule.action.value})'


@dataclass(frozen=True)
class NormalisedText:
    """The text as the filter reads it, and for each of its characters the typed position."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin[start], self.origin[end - 1] + 1


def normalise(typed: str) -> NormalisedText:
    """Lower-case letters, digits and single spaces, each mapped back to where it was typed."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(typed):
        for folded in _fold(char):
            if folded.isalnum():
                chars.append(folded)
                origin.append(index)
            elif chars and chars[-1] != " ":  # any run of separators is one space
                chars.append(" ")
                origin.append(index)
    while chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return NormalisedText(text="".join(chars), origin=tuple(origin))


def find_words(typed: str, rules: Sequence[WordRule], allowed: Iterable[str] = ()) -> list[WordMatch]:
    """Every rule that matches the text, in the order of the text; blocks before warnings at a tie."""
    text = normalise(typed)
    allow = {normalise(word).text for word in allowed}
    matches: list[WordMatch] = []
    for rule in rules:
        for found in rule.regex.finditer(text.text):
            if _word_around(text.text, found.start(), found.end()) in allow:
                continue
            start, end = text.span(found.start(), found.end())
            matches.append(WordMatch(rule=rule, start=start, end=end, typed=typed[start:end]))
            break  # one match per rule is enough to judge and to show
    order = {WordAction.BLOCK: 0, WordAction.WARN: 1}
    return sorted(matches, key=lambda match: (match.start, order[match.rule.action]))


def _fold(char: str) -> str:
    """One typed character as the filter reads it (possibly several, possibly none)."""
    out = []
    for compatible in unicodedata.normalize("NFKC", char).casefold():
        if unicodedata.category(compatible) in ("Cf", "Cc") and not compatible.isspace():
            continue  # zero-width joiners, direction marks, controls: invisible, so ignored
        for base in unicodedata.normalize("NFD", compatible):
            if unicodedata.combining(base):
                continue  # accents
            base = LOOK_ALIKES.get(base, base)
            out.append(LEET.get(base, base))
    return "".join(out)


def _letter(char: str, count: int) -> str:
    """A run of `count` of one letter of a rule: at least that many, any more (stretched)."""
    one = f"[{char}{AMBIGUOUS_ONE}]" if char in "il" else re.escape(char)
    return f"{one}{{{count},}}"


def _compile(pattern: str) -> re.Pattern[str]:
    inside_start, inside_end = pattern.startswith("*"), pattern.endswith("*")
    words = normalise(pattern.strip("*")).text.split(" ")
    if not words or not words[0]:
        raise ValueError(f"the word rule {pattern!r} has no letters")
    # Words of a phrase may be written apart or together ("blow job", "blowjob").
    word_form = r"\s*".join(
        "".join(_letter(run[1], len(run[0])) for run in re.finditer(r"(.)\1*", word)) for word in words
    )
    # Or every letter on its own ("n.s.f.w", "s e x"), which normalises to single spaces.
    spelled_apart = " ".join(_letter(char, 1) for char in "".join(words))
    start = "" if inside_start else r"(?<![a-z0-9])"
    end = "" if inside_end else r"(?![a-z0-9])"
    return re.compile(f"{start}(?:{word_form}|{spelled_apart}){end}")


def _word_around(text: str, start: int, end: int) -> str:
    """The whole word (or words) a match sits in, for the allow list."""
    while start > 0 and text[start - 1] != " ":
        start -= 1
    while end < len(text) and text[end] != " ":
        end += 1
    return text[start:end]
