"""The word filter: tricks are caught, innocent words pass, and a match names what was typed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sojourn.word_filter import WordAction, WordRule, find_words, normalise

RULES = [WordRule("ass"), WordRule("cock"), WordRule("rapist"), WordRule("cunt"), WordRule("nsfw")]
RULES += [WordRule("sex"), WordRule("*porn*"), WordRule("kill"), WordRule("blow job", WordAction.WARN)]


def matched(text: str, rules: list[WordRule] = RULES, allowed: tuple[str, ...] = ()) -> list[str]:
    return [match.rule.pattern for match in find_words(text, rules, allowed)]


@pytest.mark.parametrize(
    "innocent",
    ["an assassin in the grass", "first class", "Scunthorpe", "a cocktail", "my therapist", "as is",
     "a bass guitar", "a compass", "cocky", "Sussex", "sextant", "essex", "Paris's ex-husband"],
)  # fmt: skip
def test_innocent_words_pass(innocent: str) -> None:
    assert matched(innocent) == []


@pytest.mark.parametrize(
    ("typed", "rule", "span"),
    [
        ("n.s.f.w art", "nsfw", "n.s.f.w"),
        ("a s e x scene", "sex", "s e x"),
        ("SEEEEX on the beach", "sex", "SEEEEX"),
        ("ＮＳＦＷ", "nsfw", "ＮＳＦＷ"),  # full width
        ("ⓝⓢⓕⓦ", "nsfw", "ⓝⓢⓕⓦ"),  # circled
        ("n\u200bsfw", "nsfw", "n\u200bsfw"),  # a zero-width space inside
        ("nѕfw", "nsfw", "nѕfw"),  # a Cyrillic dze for the s
        ("сосk", "cock", "сосk"),  # Cyrillic es and o
        ("àśś", "ass", "àśś"),
        ("a$$ kicking", "ass", "a$$"),
        ("k1ll it", "kill", "k1ll"),
        ("(nsfw:1.3) cat", "nsfw", "nsfw"),
        ("nsfw::2 cat", "nsfw", "nsfw"),
        ("pornography", "*porn*", "porn"),
        ("blow-job", "blow job", "blow-job"),
        ("BLOWJOB", "blow job", "BLOWJOB"),
    ],
)
def test_tricks_are_caught_and_the_typed_part_is_named(typed: str, rule: str, span: str) -> None:
    (match,) = [m for m in find_words(typed, RULES) if m.rule.pattern == rule]
    assert match.typed == span and typed[match.start : match.end] == span
    assert f'"{span}" matches the word rule "{rule}"' in match.describe()


def test_a_stretched_letter_never_matches_fewer_letters() -> None:
    assert matched("as") == [] and matched("asss") == ["ass"]


def test_wildcards_reach_inside_words_only_where_asked() -> None:
    rules = [WordRule("porn*"), WordRule("*gore")]
    assert matched("pornstar", rules) == ["porn*"] and matched("xporn", rules) == []
    assert matched("bloodgore", rules) == ["*gore"] and matched("gorey", rules) == []


def test_allowed_words_never_match() -> None:
    rules = [WordRule("*ass*")]
    assert matched("first class", rules) == ["*ass*"]
    assert matched("first class", rules, allowed=("class",)) == []
    assert matched("first class assault", rules, allowed=("CLASS",)) == ["*ass*"]


def test_blocks_come_before_warnings_at_the_same_place() -> None:
    rules = [WordRule("nsfw", WordAction.WARN), WordRule("*nsfw*")]
    assert [m.rule.action for m in find_words("nsfw", rules)] == [WordAction.BLOCK, WordAction.WARN]


def test_a_rule_without_letters_is_refused() -> None:
    with pytest.raises(ValueError, match="has no letters"):
        _ = WordRule("**").regex


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
NOISE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(word=WORDS, before=NOISE, after=NOISE)
def test_a_rule_word_set_apart_is_always_found_where_it_was_typed(word: str, before: str, after: str) -> None:
    typed = f"{before} {word} {after}"
    matches = find_words(typed, [WordRule(word)])
    assert matches, typed
    assert normalise(matches[0].typed).text.replace(" ", "") != ""


@settings(max_examples=300, deadline=None)
@given(typed=NOISE)
def test_the_normalised_text_is_letters_digits_and_single_spaces(typed: str) -> None:
    text = normalise(typed)
    assert len(text.text) == len(text.origin)
    assert "  " not in text.text and text.text == text.text.strip()
    assert all(char == " " or char.isalnum() for char in text.text)
    assert all(0 <= index < len(typed) for index in text.origin)
    assert list(text.origin) == sorted(text.origin)


def test_the_default_list_blocks_the_obvious_and_spares_the_innocent() -> None:
    from sojourn.default_words import DEFAULT_WORD_RULES

    rules = list(DEFAULT_WORD_RULES)
    for typed in ("nsfw portrait", "a n.u.d.e figure", "p0rnographic", "S E X Y pose"):
        assert find_words(typed, rules)[0].rule.action == WordAction.BLOCK, typed
    assert find_words("a gory battle", rules)[0].rule.action == WordAction.WARN
    for typed in ("Sussex cottages", "an essex sextant", "Middlesex county", "a shotgun", "lolipop candy"):
        assert find_words(typed, rules) == [], typed
