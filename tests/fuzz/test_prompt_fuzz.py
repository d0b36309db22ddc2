"""Hostile prompts, fuzzed: every prompt consumer reads the text or refuses it in words, never crashes.

This complements tests/prompt/test_properties.py (short prompt-shaped text, and the round trip on
mostly valid prompts) with what people paste and what attackers type: any unicode (lone
surrogates included: a `str` can hold them), NULs and other control characters, bidi overrides,
zero-width and combining marks, lookalike dashes and digits, `::` weights and `(word:w)` emphasis
with absurd numbers, `{…}` nested past the limit or left open, parameters with every kind of
wrong value, inputs from empty to 100,000 characters. Each generated text goes through every
consumer in `PROMPT_CONSUMERS`; `make fuzz` runs 100,000 of them per property.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sojourn.errors import UserError
from sojourn.prompt import PromptError, emphasis_segments, parse_prompt, read_saved_parameters, to_canonical
from sojourn.prompt.permutations import MAX_NESTING, count_permutations, expand_permutations
from sojourn.services.users import UserDefaults, expand_prompt
from sojourn.spec import JobSpec
from sojourn.word_filter import WordRule, find_words
from tests.fuzz.profiles import FUZZ, inputs_run
from tests.prompt.helpers import LIMITS, RULES

# --- the consumers ---------------------------------------------------------------------------


def _round_trips(text: str, specs: Any) -> None:
    """What the parser accepts, it can write out and read back unchanged (the stored prompt)."""
    assert isinstance(specs, list) and specs and all(isinstance(spec, JobSpec) for spec in specs)
    for spec in specs:
        canonical = to_canonical(spec)
        assert parse_prompt(canonical, RULES) == [spec], canonical


def _counted(text: str, expansions: Any) -> None:
    assert len(expansions) == count_permutations(text) <= LIMITS.max_permutations


def _no_check(text: str, result: Any) -> None:
    return None


@dataclass(frozen=True)
class PromptConsumer:
    """A pure function that reads what a user typed, and the one error it may refuse it with."""

    name: str
    read: Callable[[str], object]
    refusal: type[UserError] = PromptError
    check: Callable[[str, Any], None] = _no_check  # what must hold when it reads the text


# A user's /prefer shortcuts and suffix and /settings defaults, as the services store them.
SAVED_OPTIONS = {"mine": "--ar 16:9 --s 250", "clean": "--no text, watermark", "draft": "--q .25 --relax"}
SAVED_SUFFIX = "--clean --seed 7"
SAVED_DEFAULTS = UserDefaults(
    quality=2.0, stylize=250, aspect="16:9", private=True, mode="relax"
).as_parameters()

PARSE = PromptConsumer("parse_prompt", lambda text: parse_prompt(text, RULES), check=_round_trips)
PARSE_OVER_DEFAULTS = PromptConsumer(
    "parse_prompt over saved /settings defaults",
    lambda text: parse_prompt(text, RULES, SAVED_DEFAULTS),
    check=_round_trips,
)
PARSE_EXPANDED = PromptConsumer(
    "/prefer options and suffix expanded, then parse_prompt",
    lambda text: parse_prompt(expand_prompt(text, SAVED_OPTIONS, SAVED_SUFFIX), RULES),
    check=_round_trips,
)
SAVE_SHORTCUT = PromptConsumer(
    "a /prefer option value or suffix being saved",
    lambda text: read_saved_parameters(expand_prompt(text, SAVED_OPTIONS), RULES, "shortcuts"),
)
EXPAND_PERMUTATIONS = PromptConsumer(
    "{…} permutations expanded",
    lambda text: expand_permutations(text, LIMITS.max_permutations),
    check=_counted,
)
SPLIT_EMPHASIS = PromptConsumer("(word:1.2) emphasis split", emphasis_segments)


def _spans_typed(text: str, matches: Any) -> None:
    """Each match names a non-empty part of what was typed, where it was typed."""
    for match in matches:
        assert 0 <= match.start < match.end <= len(text) and match.typed == text[match.start : match.end]


WORD_RULES = [WordRule(word) for word in ("ass", "nsfw", "blow job", "kill")] + [WordRule("*porn*")]
WORD_FILTER = PromptConsumer(
    "the word filter", lambda text: find_words(text, WORD_RULES, ("class",)), check=_spans_typed
)

# Everything that reads prompt text a user typed. A new reader of prompts is one more entry here,
# with its own refusal type, and every property below that feeds PROMPT_CONSUMERS covers it.
PROMPT_CONSUMERS: tuple[PromptConsumer, ...] = (
    PARSE,
    PARSE_OVER_DEFAULTS,
    PARSE_EXPANDED,
    SAVE_SHORTCUT,
    EXPAND_PERMUTATIONS,
    SPLIT_EMPHASIS,
    WORD_FILTER,
)
PARSERS = (PARSE, PARSE_OVER_DEFAULTS, PARSE_EXPANDED)

_INTERNALS = ("Traceback", 'File "', " object at 0x", "Error:", "Exception")


def assert_refused_in_words(consumer: PromptConsumer, text: str, error: UserError) -> None:
    """A refusal is the consumer's own error, saying what is wrong, then what to do, in our words."""
    assert isinstance(error, consumer.refusal), f"{consumer.name} raised {type(error).__name__}"
    message = error.message
    assert message and message == str(error) and message == message.strip()
    problem, colon, advice = message.partition(": ")
    assert problem and colon and advice, f"a refusal names the problem, then the fix: {message!r}"
    assert not any(internal in message for internal in _INTERNALS), message
    # It may quote the text (shortened, mostly), but never grows faster than the text does.
    assert len(message) <= 3 * len(text) + 400, (len(message), message[:200])


def consume_everywhere(text: str, property_name: str) -> None:
    """Feed `text` to every consumer: each reads it (and its check holds) or refuses it in words."""
    inputs_run[property_name] += 1
    for consumer in PROMPT_CONSUMERS:
        try:
            result = consumer.read(text)
        except UserError as error:
            assert_refused_in_words(consumer, text, error)
        else:
            consumer.check(text, result)


# --- what hostile prompts are made of -----------------------------------------------------------

# Pasted and hostile characters: C0/C1 controls (NUL included), bidi overrides and isolates,
# zero-width marks, BOM, soft hyphen, odd spaces and line separators, combining stacks, RTL
# scripts, lookalike digits, emoji sequences (a ZWJ is a format character), a lone surrogate.
AWKWARD = st.sampled_from(
    [
        "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\x9b", "\u200b", "\u200c", "\u200d", "\u2060",
        "\ufeff", "\u00ad", "\u202e", "\u202d", "\u2066", "\u2069", "\u061c", "\U000e0041", "\ufff9",
        "\u00a0", "\u2028", "\u2029", "\u3000", "\u1680", "\t", "\n", "\r\n", "\v", "\f", "e\u0301",
        "a" + "\u0308" * 40, "\u0338", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",
        "\u0661\u0666:\u0669", "\uff11\uff16:\uff19", "\U0001d7cf\U0001d7d4", "\u0130", "\ufb00", "\u01c5",
        "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f44d\U0001f3fb", "\ud800", "\udfff", "\U0010ffff",
    ]
)  # fmt: skip
WORDS = st.sampled_from(
    ["fox", "a red car", "lighthouse", "sci-fi++", "1e5", "NaN", "inf", ":", "a:", ":b", "—", "–", "-",
     ",", "\\", "\\\\", "\\,", "\\{", "\\}", "'; DROP TABLE jobs; --", "<script>", "%s%n", "${x}"]
) | st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=8)  # fmt: skip

DASHES = st.sampled_from(["--", "—", "–", "-", "---", "\u2010", "\u2212", "\uff0d", "-\u200b-"])
PARAMETER_NAMES = st.sampled_from(
    ["ar", "aspect", "seed", "no", "chaos", "c", "stylize", "s", "weird", "w", "stop", "quality", "q",
     "style", "v", "version", "niji", "tile", "private", "stealth", "public", "fast", "relax", "repeat",
     "r", "iw", "AR", "Seed", "foo", "aspectratio", "q2", "ar:16:9", "x" * 120, "\u0430r", "{ar, seed}"]
)  # fmt: skip
NUMBERS = st.sampled_from(
    ["0", "1", "2", "3", "4", "5", "6", "7", ".25", ".5", "1.0", "6.0", "-1", "-0", "+1", "9" * 40,
     "4294967295", "4294967296", "1e309", "0x10", "1_000", "Infinity", "nan", ".", "", "1.", "00007"]
)  # fmt: skip
PARAMETER_VALUES = (
    NUMBERS
    | st.sampled_from(
        ["16:9", "9:1", "1:4", "0:1", "1:0", "3:2:1", "16/9", "raw", "cute", "niji", "text, a\\, b"]
    )
    | st.builds(lambda w, h: f"{w}:{h}", NUMBERS, NUMBERS)
    | st.integers(-(10**30), 10**30).map(str)
    | WORDS
)
WEIGHTS = st.sampled_from(
    ["::", "::2", "::0", "::-1", "::-0.5", "::.5", "::+1", "::1e5", "::" + "9" * 400, ":::", "::::2", "::2b"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", " ", "  ", "", "\t", ", ", " , ", "\n"])


def permutation_groups(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`{a, b}` groups nested a few levels deep, with escapes, empty options and spare commas."""

    def group(options: list[str]) -> str:
        return "{" + ", ".join(options) + "}"

    return st.recursive(leaf, lambda inner: st.lists(inner, min_size=1, max_size=4).map(group), max_leaves=8)


BROKEN_GROUPS = st.sampled_from(
    ["{", "}", "{a, b", "a, b}", "{{a}", "{a}}", "\\{a, b}", "{a\\}, b}", "{,}", "{}", "{ , , }",
     "{" * (MAX_NESTING + 1) + "x" + "}" * (MAX_NESTING + 1), "{a, b}" * 13, "{1, 2, 3, 4}{a, b, c, d}"]
)  # fmt: skip
EMPHASIS = st.builds(lambda word, weight: f"({word}:{weight})", WORDS, NUMBERS) | st.sampled_from(
    ["(red:1.2)", "(x:3)", "(x:3.0000001)", "(x:-0)", "( :1.2)", "((a:1)", "(a:1))", "(a:b:1)"]
)


# A parameter as typed: a dash or a lookalike, a name, and zero to two values of any kind.
PARAMETER = st.builds(
    lambda dash, name, values: " ".join([dash + name, *values]),
    DASHES,
    PARAMETER_NAMES,
    st.lists(PARAMETER_VALUES | permutation_groups(NUMBERS), max_size=2),
)
PIECES = WORDS | AWKWARD | WEIGHTS | EMPHASIS | permutation_groups(WORDS) | BROKEN_GROUPS
# Mostly as typed; now and then past the length limit, or repeated to 100,000 characters (None).
REPEATS = st.sampled_from((1,) * 20 + (2, 50, None))


@st.composite
def hostile_prompt(draw: st.DrawFn) -> str:
    """Prompt-shaped text built from hostile parts: words, weights, groups, then parameters."""
    body = "".join(draw(PIECES) + draw(SEPARATORS) for _ in range(draw(st.integers(0, 8))))
    text = " ".join([body, *draw(st.lists(PARAMETER, max_size=5))])
    repeat = draw(REPEATS)
    if repeat == 1:
        return text
    text += draw(SEPARATORS)
    return text * (repeat or 100_000 // max(len(text), 1) + 1)


ANY_UNICODE = st.text(st.characters(codec=None, exclude_categories=()))  # surrogates included


# --- the properties ----------------------------------------------------------------------------


@FUZZ
@given(ANY_UNICODE)
def test_any_unicode_is_read_or_refused_in_words(text: str) -> None:
    consume_everywhere(text, "any unicode text")


@FUZZ
@given(hostile_prompt())
def test_hostile_prompt_shaped_text_is_read_or_refused_in_words(text: str) -> None:
    consume_everywhere(text, "hostile prompt-shaped text")


PLAIN_PROMPT = st.lists(
    st.sampled_from(["a", "red", "fox", "lighthouse", "in", "storm", "é", "日本"]), min_size=1, max_size=6
)
INVISIBLE = st.characters(categories=["Cc", "Cf"], exclude_characters="\t\n\r\v\f")


@FUZZ
@given(PLAIN_PROMPT, INVISIBLE, st.data())
def test_an_invisible_character_is_named_by_its_code_point(
    words: list[str], char: str, data: st.DataObject
) -> None:
    inputs_run["invisible characters"] += 1
    text = " ".join(words)
    position = data.draw(st.integers(0, len(text)))
    text = text[:position] + char + text[position:]
    for consumer in (*PARSERS, SAVE_SHORTCUT):
        with pytest.raises(PromptError) as refused:
            consumer.read(text)
        assert (
            f"the prompt contains the invisible character U+{ord(char):04X}: remove it"
            in refused.value.message
        )


BAD_VALUES: dict[str, list[str]] = {
    "ar": ["9:1", "1:9", "0:1", "16/9", "a:b", "16:9:1", "-1:1", "1" * 30 + ":1", "\uff11\uff16:\uff19", ""],
    "seed": ["-1", "4294967296", "1.5", "x", "9" * 50, ""],
    "chaos": ["101", "-5", "1.5", "lots"],
    "stylize": ["1001", "-1", "1e3"],
    "weird": ["3001", "-1"],
    "stop": ["9", "101", "0"],
    "quality": ["3", "0.3", ".", "1e0", "-1", ""],
    "style": ["cute", ""],
    "version": ["5", "x", "99", ""],
    "niji": ["5", "x"],
    "repeat": ["5", "0", "41", "x", ""],
    "iw": ["4", "-1", "x", "1" * 13, ""],
    "tile": ["yes"],
    "private": ["1"],
    "fast": ["now"],
    "no": [""],
    "foo": ["", "1"],
    "aspectratio": ["16:9"],
    "x" * 100: [""],
}
ALIASES = {"ar": ["aspect", "AR"], "chaos": ["c"], "stylize": ["s"], "quality": ["q"], "version": ["v"]}


@st.composite
def bad_parameter(draw: st.DrawFn) -> tuple[str, str]:
    """A parameter that must be refused, as (its token as typed, the whole parameter)."""
    kind = draw(st.sampled_from(sorted(BAD_VALUES)))
    name = draw(st.sampled_from([kind, *ALIASES.get(kind, [])]))
    token = draw(st.sampled_from(["--", "—", "–"])) + name
    value = draw(st.sampled_from(BAD_VALUES[kind]))
    return token, f"{token} {value}".strip()


GOOD_PARAMETERS = st.lists(
    st.sampled_from(["--ar 16:9", "--seed 3", "--q .5", "--tile", "--no text", "--s 50"])
)


@FUZZ
@given(PLAIN_PROMPT, GOOD_PARAMETERS, bad_parameter())
def test_a_wrong_parameter_is_named_as_typed(words: list[str], good: list[str], bad: tuple[str, str]) -> None:
    inputs_run["one wrong parameter"] += 1
    token, written = bad
    text = " ".join([*words, *good, written])
    for consumer in PARSERS:
        with pytest.raises(PromptError) as refused:
            consumer.read(text)
        assert token[:39] in refused.value.message, (text, refused.value.message)


def first_brace_problem(text: str) -> str | None:
    """What the permutation reader must say about the braces in `text`, worked out independently."""
    open_at: list[int] = []
    index = 0
    while index < len(text):
        if text[index] == "\\" and text[index + 1 : index + 2] in ("{", "}", ","):
            index += 2
            continue
        if text[index] == "{":
            open_at.append(index + 1)
            if len(open_at) > MAX_NESTING:
                return f"the {{ at character {index + 1} nests permutations more than {MAX_NESTING} deep"
        elif text[index] == "}":
            if not open_at:
                return f"the }} at character {index + 1} has no matching {{"
            open_at.pop()
        index += 1
    return f"the {{ at character {open_at[0]} is never closed" if open_at else None


@FUZZ
@given(st.text(st.sampled_from("ab{},\\ "), max_size=60))
def test_a_brace_problem_is_named_by_its_position(text: str) -> None:
    inputs_run["brace positions"] += 1
    expected = first_brace_problem(text)
    try:
        count_permutations(text)
    except PromptError as error:
        assert expected is not None and error.message.startswith(expected), (text, error.message)
    else:
        assert expected is None, text


@FUZZ
@given(st.text(max_size=40), st.integers(1, 100_000))
def test_an_overlong_prompt_is_refused_with_its_length(text: str, extra: int) -> None:
    inputs_run["overlong prompts"] += 1
    limit = LIMITS.max_prompt_chars
    text = (text or "x") * (limit // max(len(text), 1) + 1)
    text = text[: limit + extra].ljust(limit + extra, "x")
    with pytest.raises(PromptError) as refused:
        parse_prompt(text, RULES)
    assert refused.value.message == (
        f"the prompt is {len(text)} characters long and the limit is {limit}: "
        f"shorten it by {extra} characters"
    )


# Names /prefer option set accepts, and "ar", which it refuses but expansion must ignore anyway.
OPTION_NAMES = st.sampled_from(["mine", "clean", "draft", "x", "0", "my-style_2", "q2", "ar", "a" * 32])


@FUZZ
@given(
    hostile_prompt(),
    st.dictionaries(OPTION_NAMES, st.lists(PARAMETER, min_size=1, max_size=3).map(" ".join), max_size=4),
    st.lists(PARAMETER, max_size=3).map(" ".join),
)
def test_saved_shortcuts_and_suffix_expand_then_read_or_refuse(
    text: str, options: dict[str, str], suffix: str
) -> None:
    inputs_run["/prefer shortcuts and suffix"] += 1
    saved = {}
    for name, value in options.items():  # only what /prefer option set would have saved
        try:
            read_saved_parameters(value, RULES, "shortcuts")
        except PromptError as error:
            assert_refused_in_words(SAVE_SHORTCUT, value, error)
        else:
            saved[name] = value
    expanded = expand_prompt(text, saved, suffix)
    if not suffix.strip():
        assert expanded == expand_prompt(text, saved)
    try:
        specs = parse_prompt(expanded, RULES, SAVED_DEFAULTS)
    except PromptError as error:
        assert_refused_in_words(PARSE, expanded, error)
    else:
        _round_trips(expanded, specs)


# --- cases the fuzzing found, kept as examples ---------------------------------------------

DISCORD_MESSAGE_LIMIT = 2000


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("::" + "9" * 1990, id="weight with no text before it, quoted three times"),
        pytest.param("a (x:" + "9" * 1990 + ")", id="emphasis weight out of range, quoted whole"),
        pytest.param("a::--" + "x" * 1990, id="parameter glued to '::', quoted whole"),
    ],
)
def test_a_refusal_fits_in_one_discord_message(text: str) -> None:
    assert len(text) <= LIMITS.max_prompt_chars
    with pytest.raises(PromptError) as refused:
        parse_prompt(text, RULES)
    assert len(refused.value.message) <= DISCORD_MESSAGE_LIMIT


@pytest.mark.parametrize("char", ["\ud800", "\udfff"])
def test_a_prompt_the_parser_accepts_can_be_stored_as_utf8(char: str) -> None:
    try:
        specs = parse_prompt(f"a {char} fox", RULES)
    except PromptError:
        return
    for spec in specs:
        to_canonical(spec).encode("utf-8")
