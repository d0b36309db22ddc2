"""The word filter: a pure function from (rules, allow list, prompt) to a verdict with the match's span.

Normalise first, then match, as AI Horde and Discord's AutoMod do. Normalising folds the tricks
people use to slip a word past a list: Unicode compatibility forms (NFKC: full-width letters,
ligatures), case, accents, zero-width and control characters, look-alikes (Cyrillic, Greek and
other scripts' letters from Unicode's confusables data; Latin letters with a stroke or hook, `ø`,
`ł`; small capitals), leetspeak (`0→o`, `3→e`, `4→a`, `5→s`, `7→t`, `@→a`, `$→s`; `1` stands for
`i` or `l`), a letter typed more than three times in a row (read as three), and weights
(`(word:1.3)`, `word::2`: the numbers go, the punctuation separates words). Matching is by whole
word or phrase, so "assassin", "grass" and "Scunthorpe" never match a rule "ass" or "cunt"; a rule
may put `*` at either end to match inside words (`*porn*`). A phrase matches written apart or
together ("blow job", "blowjob"), and any rule matches spelled out letter by letter (`n.s.f.w`,
`s e x`). A letter stretched out (`seeex`) matches the rule's letter, never fewer: "as" does not
match "ass". An allow-listed word never matches. Every position in the normalised text remembers
where it came from, so a verdict names the part of the prompt the user typed.

A server's list is compiled once into a `WordList` (`word_list()` caches it per process): one
regex scan of the prompt's letters finds the few rules that could match, and only their own
regexes run.
"""

from __future__ import annotations

import bisect
import enum
import functools
import operator
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate, chain, count

LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
AMBIGUOUS_ONE = "1"  # `1` is `i` or `l`: kept as is, and both letters match it
# Letters that take no room: Hangul fillers are letters to Unicode, and a known way to hide a gap.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0")
# A letter typed more than this many times in a row reads as this many: "xxx" stays apart from "xx".
MAX_REPEAT = 3

MAX_RULE_LENGTH = 100  # the column's size (db.models.ServerWordRule.pattern)
MAX_RULE_WORDS = 5

# `(word:1.3)`, `[word:0.5]`, `word::2`, `word::`: A1111 and Midjourney weights, blanked before reading.
_WEIGHT = re.compile(r"::\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)?|:\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*(?=[)\]])")
_LONG_RUN = re.compile(rf"([^ ])\1{{{MAX_REPEAT},}}")
_RUNS = re.compile(r"(.)\1*")
_REPEATS = re.compile(r"(.)\1+")
# The scan for candidate rules (see WordList) reads `i`, `l` and `1` as one letter.
_SCAN_LETTERS = str.maketrans({"l": "i", AMBIGUOUS_ONE: "i"})
# Unicode names of Latin letters that NFD cannot take apart (ø, ł, ƀ) and of small capitals (ᴀ).
_LATIN_NAME = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])(?: WITH .+)?")
_LATIN_BLOCKS = ((0x80, 0x2B0), (0x1D00, 0x1DC0), (0x1E00, 0x1F00), (0x2C60, 0x2C80), (0xA720, 0xA800))


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
    blanked = _without_weights(typed)
    pieces = [_FOLDS[ord(char)] for char in blanked]
    folded = "".join(pieces)
    # Where each folded character was typed: one for one, unless a character read as none or several.
    one_for_one = len(folded) == len(blanked) and "" not in pieces
    typed_at = [] if one_for_one else [index for index, piece in enumerate(pieces) for _ in piece]
    # The words, one space between them: each word's letters, then the first separator after it.
    parts = folded.split(" ")
    part_starts = map(operator.add, accumulate(map(len, parts), initial=0), count())  # a space after each
    words = [(start, len(part)) for start, part in zip(part_starts, parts, strict=False) if part]
    kept = list(chain.from_iterable(range(start, start + length + 1) for start, length in words))[:-1]
    text = " ".join(filter(None, parts))
    origin = kept if one_for_one else [typed_at[index] for index in kept]
    if _LONG_RUN.search(text):
        text, origin = _capped_runs(text, origin)
    return NormalisedText(text=text, origin=tuple(origin))


def rule_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a word rule, then what to do, for the person who typed it; None if it can.

    A clause to follow `"<pattern>" cannot be a word rule: `, so it neither repeats the pattern
    nor ends a sentence.
    """
    pattern = pattern.strip()
    if not pattern:
        return "it is empty: type the word or phrase it should match"
    if len(pattern) > MAX_RULE_LENGTH:
        return f"it is {len(pattern)} characters long: shorten it to at most {MAX_RULE_LENGTH}"
    inside = pattern.strip("*")
    if "*" in inside:
        return "a * only works at an end: remove the * in the middle, wildcards go at either end"
    if inside != inside.strip():
        return "a * must touch its word: remove the space next to the *"
    words = _read(inside).split(" ")
    if not words[0]:
        return "it has no letters or digits: a rule needs a word to match"
    if len(inside.split()) > MAX_RULE_WORDS:
        return (
            f"it has {len(inside.split())} words: keep a phrase to {MAX_RULE_WORDS} words, "
            "or split it into several rules"
        )
    if len("".join(words)) < 2:
        return "it is a single letter, which would match that letter wherever it stands alone: use a word"
    return None


class WordList:
    """A server's rules and allow list, compiled once to check many prompts quickly.

    Each rule's own regex decides (word boundaries, letter counts, the allow list), but it runs
    only where the rule could match. Every match, however it is written (stretched, spelled
    apart, a phrase written together), shows the rule's skeleton: its letters with repeats
    folded, `i`, `l` and `1` as one letter, and spaces ignored ("S E E X" and "sex" are both
    "sex"). So a single regex of all the rules' skeletons, shaped as a trie, scans the prompt once
    (at word starts; anywhere, for rules with a leading `*`) and names the few rules, and the
    places, worth trying.
    """

    def __init__(self, rules: Iterable[WordRule], allowed: Iterable[str] = ()) -> None:
        self.rules = tuple(dict.fromkeys(rules))  # the same rule twice is one rule
        self.allowed = frozenset(_read(word) for word in allowed) - {""}
        at_word_start: dict[str, list[int]] = {}
        anywhere: dict[str, list[int]] = {}
        for index, rule in enumerate(self.rules):
            # Each rule's regex is compiled when a prompt first makes it a candidate (most never
            # are), but a rule without letters fails here, not on some later prompt.
            pattern = _Pattern.read(rule.pattern)
            if not pattern.words:
                raise ValueError(f"the word rule {rule.pattern!r} has no letters")
            skeletons = anywhere if pattern.inside_start else at_word_start
            skeletons.setdefault(_skeleton(pattern.letters), []).append(index)
        self._scans = (_Scan(at_word_start, at_word_start=True), _Scan(anywhere, at_word_start=False))

    def find(self, typed: str) -> list[WordMatch]:
        """Every rule that matches the text, in the order of the text; blocks before warnings at a tie."""
        folded = _fold_text(typed)
        # The words as normalise() reads them, but long runs of a letter not yet cut to MAX_REPEAT:
        # a rule's letter counts are at most that, so the same rules match, and positions stay simple.
        text = " ".join(folded.split())
        scanned = text.translate(_SCAN_LETTERS)
        spans: dict[int, tuple[int, int]] = {}  # the first match of each rule
        allowed_around: dict[tuple[int, int], bool] = {}  # the words around matches, looked up once
        for scan in self._scans:
            for position, candidates in scan.places(scanned):
                for index in candidates:
                    if index in spans:
                        continue  # one match per rule is enough to judge and to show
                    hit = self.rules[index].regex.match(text, position)
                    if hit is None:
                        continue
                    if self.allowed:
                        around = _word_around(text, *hit.span())
                        if around not in allowed_around:
                            allowed_around[around] = _capped(text[slice(*around)]) in self.allowed
                        if allowed_around[around]:
                            continue
                    spans[index] = hit.span()
        if not spans:
            return []
        typed_at = _TypedPositions(typed, folded, text)  # worked out only for a verdict
        matches = []
        for index, (start, end) in sorted(spans.items()):
            start, end = typed_at(start), typed_at(end - 1) + 1
            matches.append(WordMatch(rule=self.rules[index], start=start, end=end, typed=typed[start:end]))
        order = {WordAction.BLOCK: 0, WordAction.WARN: 1}
        return sorted(matches, key=lambda match: (match.start, order[match.rule.action]))


class _TypedPositions:
    """Where a letter of the read text was typed, worked out for the few letters a verdict names.

    normalise() maps every character, a verdict needs two per match: a letter's word and its place
    in the word find it in the folded text (with `str` methods, in C). Where every character
    folded to exactly one, that is where it was typed; otherwise the folds' lengths add up to it.
    """

    def __init__(self, typed: str, folded: str, text: str) -> None:
        self.folded, self.text = folded, text
        blanked = _without_weights(typed)
        self.fold_ends: list[int] | None = None
        if not (blanked.isascii() and len(folded) == len(blanked)):  # ASCII folds to one or none
            self.fold_ends = list(accumulate(len(_FOLDS[ord(char)]) for char in blanked))

    def __call__(self, index: int) -> int:
        words_before = self.text.count(" ", 0, index)
        in_word = index - self.text.rfind(" ", 0, index) - 1
        word_and_after = self.folded.split(None, words_before)[-1]
        folded_index = len(self.folded) - len(word_and_after) + in_word
        return folded_index if self.fold_ends is None else bisect.bisect_right(self.fold_ends, folded_index)


class _Scan:
    """Where rules could match: one trie-shaped regex of their skeletons, run over the prompt once."""

    FOUND_LIMIT = 4096  # texts found, kept with the rules they name; a few per prompt

    def __init__(self, skeletons: dict[str, list[int]], at_word_start: bool) -> None:
        self.at_word_start = at_word_start
        # The regex finds the longest skeleton starting at a place; the shorter ones there are its prefixes.
        self.candidates = {
            skeleton: tuple(
                sorted(chain.from_iterable(skeletons.get(prefix, ()) for prefix in _prefixes(skeleton)))
            )
            for skeleton in skeletons
        }
        trie = _trie(skeletons)
        # A word starts after anything but a Latin letter or digit (the rules' word boundary); the
        # regex starts with that character, so `re` jumps from one to the next in C.
        self.regex = (re.compile(f"[^a-z0-9](?=({trie}))" if at_word_start else trie)) if skeletons else None
        self._found: dict[str, tuple[int, ...]] = {}  # text found → the rules to try there

    def places(self, scanned: str) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Each place in the scanned text where some rule's skeleton starts, and the rules to try there."""
        if self.regex is None:
            return
        if self.at_word_start:
            for before_word in self.regex.finditer(" " + scanned):
                yield before_word.start(), self._rules_for(before_word.group(1))
        else:  # overlapping finds: each search starts one past the last find
            position = 0
            while found := self.regex.search(scanned, position):
                yield found.start(), self._rules_for(found.group())
                position = found.start() + 1

    def _rules_for(self, found: str) -> tuple[int, ...]:
        rules = self._found.get(found)
        if rules is None:
            rules = self.candidates[_REPEATS.sub(r"\1", found.replace(" ", ""))]
            if len(self._found) < self.FOUND_LIMIT:
                self._found[found] = rules
        return rules


def word_list(rules: Iterable[WordRule], allowed: Iterable[str] = ()) -> WordList:
    """The compiled `WordList` for these rules and allow list, built once per process and reused.

    A caller that checks many prompts against one list should keep the `WordList`: finding it
    again here costs about 0.1 ms for a thousand rules (the key is built from every rule).
    """
    rules = tuple(rules)
    # Keyed by plain strings, which hash and compare in C; a thousand dataclasses would not.
    return _cached_word_list(tuple(map(_PATTERN, rules)), tuple(map(_ACTION, rules)), frozenset(allowed))


def find_words(typed: str, rules: Sequence[WordRule], allowed: Iterable[str] = ()) -> list[WordMatch]:
    """Every rule that matches the text, in the order of the text; blocks before warnings at a tie."""
    return word_list(rules, allowed).find(typed)


_PATTERN = operator.attrgetter("pattern")
_ACTION = operator.attrgetter("action")


# A server's list of a thousand rules holds about 2 MB once all its regexes are compiled; most
# lists are a few dozen rules. Enough room that the servers one process serves do not evict each other.
@functools.lru_cache(maxsize=128)
def _cached_word_list(
    patterns: tuple[str, ...], actions: tuple[WordAction, ...], allowed: frozenset[str]
) -> WordList:
    return WordList(map(WordRule, patterns, actions), allowed)


# --- reading text ------------------------------------------------------------------------------


def _without_weights(typed: str) -> str:
    """The text with its weights' numbers blanked out, character for character."""
    if ":" not in typed:
        return typed
    return _WEIGHT.sub(lambda weight: " " * len(weight.group()), typed)


def _fold_text(typed: str) -> str:
    """Each typed character as `_fold` reads it (C speed: `str.translate` with a filled-in table)."""
    return _without_weights(typed).translate(_FOLDS)


def _read(typed: str) -> str:
    """`normalise(typed).text`, without the positions."""
    return _capped(" ".join(_fold_text(typed).split()))


def _capped(text: str) -> str:
    return _LONG_RUN.sub(r"\1" * MAX_REPEAT, text)


def _capped_runs(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """The text with each letter typed more than MAX_REPEAT times in a row cut to MAX_REPEAT."""
    kept_text: list[str] = []
    kept_origin: list[int] = []
    last = 0
    for run in _LONG_RUN.finditer(text):
        start, end = run.span()
        kept_text.append(text[last : start + MAX_REPEAT])
        kept_origin += origin[last : start + MAX_REPEAT - 1]
        kept_origin.append(origin[end - 1])  # the last kept letter stands for the rest, as typed
        last = end
    kept_text.append(text[last:])
    kept_origin += origin[last:]
    return "".join(kept_text), kept_origin


def _prefixes(text: str) -> Iterator[str]:
    return (text[:end] for end in range(1, len(text) + 1))


def _skeleton(letters: str) -> str:
    return _REPEATS.sub(r"\1", letters.translate(_SCAN_LETTERS))


def _fold(char: str) -> str:
    """One typed character as the filter reads it: letters and digits, " " for a separator, or nothing.

    Repeated until nothing changes (NFKC, case folding and look-alikes can each expose work for
    another), so reading the result again gives the same result.
    """
    folded = _fold_once(char)
    for _ in range(4):
        again = "".join(_fold_once(part) for part in folded)
        if again == folded:
            break
        folded = again
    return folded


def _fold_once(char: str) -> str:
    look_alikes = _look_alikes() if not char.isascii() else {}
    out = []
    for compatible in unicodedata.normalize("NFKC", char):
        if _unseen(compatible):
            continue
        compatible = look_alikes.get(compatible, compatible)  # before case folding: Greek Ν is N, ν is v
        for lower in compatible.casefold():
            for base in unicodedata.normalize("NFD", lower):
                if _unseen(base):
                    continue
                base = look_alikes.get(base, base)
                base = LEET.get(base, base)
                out.append(base if base.isalnum() else " ")
    return "".join(out)


def _unseen(char: str) -> bool:
    """Accents and other marks drawn on a letter, zero-width and control characters: ignored."""
    if char in INVISIBLE or unicodedata.combining(char):
        return True
    category = unicodedata.category(char)
    return category in ("Mn", "Me") or (category in ("Cf", "Cc") and not char.isspace())


class _FoldTable(dict[int, str]):
    """`str.translate`'s table of `_fold`, filled in as characters are first seen."""

    LIMIT = 65_536  # a prompt made of rare characters is read, but does not grow the table forever

    def __missing__(self, codepoint: int) -> str:
        folded = _fold(chr(codepoint))
        if len(self) < self.LIMIT:
            self[codepoint] = folded
        return folded


_FOLDS = _FoldTable()
_FOLDS.update({codepoint: _fold(chr(codepoint)) for codepoint in range(128)})


@functools.cache
def _look_alikes() -> dict[str, str]:
    """Characters that look like one Latin letter or digit, mapped to it (lower case)."""
    table: dict[str, str] = {}
    for first, last in _LATIN_BLOCKS:
        for codepoint in range(first, last):
            name = _LATIN_NAME.fullmatch(unicodedata.name(chr(codepoint), ""))
            if name:
                table[chr(codepoint)] = name.group(1).lower()
    # Unicode's confusables (confusables.txt), which confusable-homoglyphs keeps current: what a
    # hand-kept list of Cyrillic and Greek letters would miss (Armenian, Cherokee, Lisu, symbols).
    from confusable_homoglyphs.confusables import confusables_data

    confusables: dict[str, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for homoglyph in homoglyphs:
            target = homoglyph["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                # What looks like `l` is a vertical stroke: `I`, `1` or `l`, so it reads as `1`.
                confusables[char] = AMBIGUOUS_ONE if target in "lI1" else target.lower()
                break
    # Case folding comes first, so a capital's look-alike stands for its small letter too (Cyrillic
    # К, Т, Н are k, t, h; к, т, н look like nothing Latin), unless that has one of its own.
    table.update(
        {
            char.lower(): target
            for char, target in confusables.items()
            if len(char.lower()) == 1 and not char.lower().isascii()
        }
    )
    table.update(confusables)
    return table


# --- compiling rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """A rule's pattern read: its words as the filter reads them, and where it may match inside words."""

    words: tuple[str, ...]
    inside_start: bool
    inside_end: bool

    @classmethod
    def read(cls, pattern: str) -> _Pattern:
        pattern = pattern.strip()
        words = tuple(_read(pattern.strip("*")).split(" "))
        return cls(words if words[0] else (), pattern.startswith("*"), pattern.endswith("*"))

    @property
    def letters(self) -> str:
        return "".join(self.words)


@functools.lru_cache(maxsize=8192)
def _compile(pattern: str) -> re.Pattern[str]:
    rule = _Pattern.read(pattern)
    if not rule.words:
        raise ValueError(f"the word rule {pattern!r} has no letters")
    # Both forms below start with the rule's first letter; matched once ahead of them, it lets `re`
    # jump to where that letter occurs instead of trying every position.
    first = _letter_class(rule.letters[0])
    head = first if rule.inside_start else f"{first}(?<![a-z0-9]{first})"
    tail = "" if rule.inside_end else "(?![a-z0-9])"
    # Words of a phrase may be written apart or together ("blow job", "blowjob").
    runs = [[(run.group(1), len(run.group())) for run in _RUNS.finditer(word)] for word in rule.words]
    runs[0][0] = (runs[0][0][0], runs[0][0][1] - 1)
    word_form = " ?".join("".join(_letter(char, count) for char, count in word) for word in runs)
    # Or every letter on its own ("n.s.f.w", "s e x"), which normalises to single spaces.
    spelled_apart = _letter(rule.letters[0], 0) + "".join(f" {_letter(char, 1)}" for char in rule.letters[1:])
    return re.compile(f"{head}(?:{word_form}|{spelled_apart}){tail}")


def _letter_class(char: str) -> str:
    """A letter of a rule, or `1` where the rule has `i` or `l` (and either where it has `1`)."""
    if char == AMBIGUOUS_ONE:
        return f"[il{AMBIGUOUS_ONE}]"
    return f"[{char}{AMBIGUOUS_ONE}]" if char in "il" else re.escape(char)


def _letter(char: str, count: int) -> str:
    """A run of `count` of one letter of a rule: at least that many, any more (stretched)."""
    return f"{_letter_class(char)}{{{count},}}"


def _trie(skeletons: Iterable[str]) -> str:
    """A regex for any of `skeletons` as they may be written, shaped as a trie, greedy: the longest.

    Each letter may repeat, and a space may follow any letter (letters spelled apart, a phrase's
    words). `re` tries alternatives one by one, so a flat `a|b|c` of a
    thousand rules costs a thousand tries at each place; a trie costs one per letter.
    """
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for skeleton in skeletons:
        node = root
        for char in skeleton:
            node = node.setdefault(char, {})
        node[""] = {}  # a skeleton ends here

    def letter(char: str, node: dict[str, dict]) -> str:  # type: ignore[type-arg]
        # The letter, then more of it or spaces ("s", "sss", "s s"): one character class, which
        # `re` repeats in a tight loop, where `(?: ?s)*` would go through its general machinery.
        escaped = re.escape(char)
        return f"{escaped}[{escaped} ]*{after(node)}"

    def after(node: dict[str, dict]) -> str:  # type: ignore[type-arg]
        branches = [letter(char, child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    top = [letter(char, child) for char, child in sorted(root.items())]
    return top[0] if len(top) == 1 else f"(?:{'|'.join(top)})"


def _word_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the whole word (or words) a match sits in starts and ends, for the allow list."""
    end = text.find(" ", end)
    return text.rfind(" ", 0, start) + 1, len(text) if end == -1 else end
