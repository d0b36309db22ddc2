"""The word filter: tricks are caught, innocent words pass, and a match names what was typed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sojourn.default_words import DEFAULT_WORD_RULES
from sojourn.word_filter import (
    MAX_RULE_LENGTH,
    WordAction,
    WordList,
    WordMatch,
    WordRule,
    find_words,
    normalise,
    rule_problem,
    word_list,
)
from tests.innocent_words import BLOCKED_WORDS, INNOCENT_WORDS

RULES = [WordRule("ass"), WordRule("cock"), WordRule("rapist"), WordRule("cunt"), WordRule("nsfw")]
RULES += [WordRule("sex"), WordRule("*porn*"), WordRule("kill"), WordRule("blow job", WordAction.WARN)]
RULES += [WordRule("tit"), WordRule("slut"), WordRule("nude"), WordRule("gore*"), WordRule("*fest")]


def matched(text: str, rules: list[WordRule] = RULES, allowed: tuple[str, ...] = ()) -> list[str]:
    return [match.rule.pattern for match in find_words(text, rules, allowed)]


@pytest.mark.parametrize(
    "innocent",
    ["an assassin in the grass", "first class", "Scunthorpe", "a cocktail", "my therapist", "as is",
     "a bass guitar", "a compass", "cocky", "Sussex", "sextant", "essex", "Paris's ex-husband",
     "16:9 (title:1.2)", "xx century", "a s-shaped road"],
)  # fmt: skip
def test_innocent_words_pass(innocent: str) -> None:
    assert matched(innocent) == []


# One case for each trick the filter reads through: (typed, the rule it must match, the span named).
EVASIONS = {
    "full width (NFKC)": ("ＮＳＦＷ art", "nsfw", "ＮＳＦＷ"),
    "circled letters (NFKC)": ("ⓝⓢⓕⓦ", "nsfw", "ⓝⓢⓕⓦ"),
    "mathematical letters (NFKC)": ("𝐬𝐞𝐱 scene", "sex", "𝐬𝐞𝐱"),
    "a ligature (NFKC)": ("ﬁlthy sex", "sex", "sex"),
    "upper case": ("NSFW art", "nsfw", "NSFW"),
    "mixed case": ("a NuDe model", "nude", "NuDe"),
    "accents": ("àśś", "ass", "àśś"),
    "combining accents": ("s\u0301e\u0300x", "sex", "s\u0301e\u0300x"),
    "an enclosing mark": ("s\u20dde\u20ddx", "sex", "s\u20dde\u20ddx"),
    "a mark that case-folds to a letter": ("s\u0345ex", "sex", "s\u0345ex"),
    "a zero-width space": ("n\u200bsfw", "nsfw", "n\u200bsfw"),
    "a zero-width joiner": ("s\u200dex", "sex", "s\u200dex"),
    "a soft hyphen": ("nu\u00adde", "nude", "nu\u00adde"),
    "a direction mark": ("s\u202eex", "sex", "s\u202eex"),
    "a Hangul filler": ("s\u3164ex", "sex", "s\u3164ex"),
    "a NUL": ("s\x00ex", "sex", "s\x00ex"),
    "another control character": ("nud\x07e", "nude", "nud\x07e"),
    "leet 0 for o": ("c0ck", "cock", "c0ck"),
    "leet 1 for i": ("k1ll it", "kill", "k1ll"),
    "leet 1 for l": ("ki11 it", "kill", "ki11"),
    "leet 3 for e": ("s3x", "sex", "s3x"),
    "leet 4 for a": ("4ss", "ass", "4ss"),
    "leet 5 for s": ("n5fw", "nsfw", "n5fw"),
    "leet 7 for t": ("7i7", "tit", "7i7"),
    "leet @ for a": ("@ss", "ass", "@ss"),
    "leet $ for s": ("a$$ kicking", "ass", "a$$"),
    "Cyrillic look-alikes": ("сосk", "cock", "сосk"),
    "a Cyrillic dze": ("nѕfw", "nsfw", "nѕfw"),
    "a Cyrillic capital's small letter": ("кіll", "kill", "кіll"),
    "Greek capitals": ("ΝSFW", "nsfw", "ΝSFW"),
    "a Cherokee letter": ("ꮪex", "sex", "ꮪex"),
    "a Latin letter with a stroke": ("pørn", "*porn*", "pørn"),
    "small capitals": ("ɴꜱꜰᴡ", "nsfw", "ɴꜱꜰᴡ"),
    "letters spaced apart": ("a s e x scene", "sex", "s e x"),
    "letters spaced wide": ("s   e   x", "sex", "s   e   x"),
    "letters dotted apart": ("n.s.f.w art", "nsfw", "n.s.f.w"),
    "letters dashed apart": ("s-l-u-t", "slut", "s-l-u-t"),
    "letters underscored apart": ("n_u_d_e", "nude", "n_u_d_e"),
    "a repeated letter": ("SEEEEX on the beach", "sex", "SEEEEX"),
    "repeated letters everywhere": ("ssseeeexxxx", "sex", "ssseeeexxxx"),
    "an A1111 weight": ("(nsfw:1.3) cat", "nsfw", "nsfw"),
    "a bracketed weight": ("[nude:0.5] statue", "nude", "nude"),
    "a :: weight": ("nsfw::2 cat", "nsfw", "nsfw"),
    "a negative :: weight": ("cat::-0.5 nsfw::1.5", "nsfw", "nsfw"),
    "a * at both ends": ("pornography", "*porn*", "porn"),
    "a * at the end": ("gorefest", "gore*", "gore"),
    "a * at the start": ("bloodfest", "*fest", "fest"),
    "a phrase": ("a blow job", "blow job", "blow job"),
    "a phrase written together": ("BLOWJOB", "blow job", "BLOWJOB"),
    "a phrase hyphenated": ("blow-job", "blow job", "blow-job"),
    "a phrase spelled out": ("b l o w j o b", "blow job", "b l o w j o b"),
    "a phrase stretched": ("bloooow jooob", "blow job", "bloooow jooob"),
    "several tricks at once": ("(Ｓ.3.χ:1.2)", "sex", "Ｓ.3.χ"),
}


@pytest.mark.parametrize(("typed", "rule", "span"), EVASIONS.values(), ids=EVASIONS.keys())
def test_tricks_are_caught_and_the_typed_part_is_named(typed: str, rule: str, span: str) -> None:
    (match,) = [m for m in find_words(typed, RULES) if m.rule.pattern == rule]
    assert match.typed == span and typed[match.start : match.end] == span
    assert f'"{span}" matches the word rule "{rule}"' in match.describe()


def test_a_stretched_letter_never_matches_fewer_letters() -> None:
    assert matched("as") == [] and matched("asss") == ["ass"]
    assert matched("xx century", [WordRule("xxx")]) == [] and matched("XXXXX", [WordRule("xxx")]) == ["xxx"]


def test_a_one_in_a_rule_matches_i_l_or_one() -> None:
    rules = [WordRule("k1ll")]
    assert matched("kill", rules) == matched("k1ll", rules) == matched("klll", rules) == ["k1ll"]


def test_wildcards_reach_inside_words_only_where_asked() -> None:
    rules = [WordRule("porn*"), WordRule("*gore")]
    assert matched("pornstar", rules) == ["porn*"] and matched("xporn", rules) == []
    assert matched("bloodgore", rules) == ["*gore"] and matched("gorey", rules) == []


def test_a_rule_matches_next_to_letters_of_another_script() -> None:
    assert matched("性感sex女孩") == ["sex"] and matched("δsex") == ["sex"]


def test_a_rule_in_another_script_matches_inside_text_without_spaces() -> None:
    rules = [WordRule("色情"), WordRule("жопа")]
    assert matched("一张色情图片", rules) == ["色情"] and matched("ЖОПА", rules) == ["жопа"]


def test_allowed_words_never_match() -> None:
    rules = [WordRule("*ass*")]
    assert matched("first class", rules) == ["*ass*"]
    assert matched("first class", rules, allowed=("class",)) == []
    assert matched("first class assault", rules, allowed=("CLASS",)) == ["*ass*"]
    assert matched("a cocktail", [WordRule("cock*")], allowed=("Cocktail",)) == []
    assert matched("cocktail cocks", [WordRule("cock*")], allowed=("cocktail",)) == ["cock*"]


def test_blocks_come_before_warnings_at_the_same_place() -> None:
    rules = [WordRule("nsfw", WordAction.WARN), WordRule("*nsfw*")]
    assert [m.rule.action for m in find_words("nsfw", rules)] == [WordAction.BLOCK, WordAction.WARN]


def test_matches_come_in_the_order_of_the_text_once_per_rule() -> None:
    found = find_words("kill the nsfw sex, then sex and nsfw again", RULES)
    assert [(m.rule.pattern, m.start) for m in found] == [("kill", 0), ("nsfw", 9), ("sex", 14)]


def test_a_rule_without_letters_is_refused() -> None:
    with pytest.raises(ValueError, match="has no letters"):
        _ = WordRule("**").regex
    with pytest.raises(ValueError, match="has no letters"):
        WordList([WordRule("nsfw"), WordRule("--")])


# --- the innocent list ---------------------------------------------------------------------------

INNOCENT = [word for words in INNOCENT_WORDS.values() for word in words]
BLOCKED_WHOLE_WORDS = [WordRule(word) for word in BLOCKED_WORDS]


def test_the_innocent_list_is_long_and_each_word_holds_a_blocked_one() -> None:
    assert len(INNOCENT) >= 200 and len(set(INNOCENT)) == len(INNOCENT)
    for blocked, words in INNOCENT_WORDS.items():
        assert all(blocked in word.lower() and blocked != word.lower() for word in words), blocked


@pytest.mark.parametrize(
    "rules", [BLOCKED_WHOLE_WORDS, list(DEFAULT_WORD_RULES)], ids=["blocked", "defaults"]
)
def test_innocent_words_pass_whole_word_rules(rules: list[WordRule]) -> None:
    assert {word: matched(word, rules) for word in INNOCENT if matched(word, rules)} == {}
    assert matched(", ".join(INNOCENT), rules) == []  # and all together, as one long prompt


def test_the_blocked_words_themselves_are_caught() -> None:
    for word in BLOCKED_WORDS:
        assert matched(f"a {word.upper()}, in (art:1.2)", BLOCKED_WHOLE_WORDS) == [word], word


def test_the_default_list_blocks_the_obvious_and_spares_the_innocent() -> None:
    rules = list(DEFAULT_WORD_RULES)
    for typed in ("nsfw portrait", "a n.u.d.e figure", "p0rnographic", "S E X Y pose"):
        assert find_words(typed, rules)[0].rule.action == WordAction.BLOCK, typed
    assert find_words("a gory battle", rules)[0].rule.action == WordAction.WARN
    for typed in ("Sussex cottages", "an essex sextant", "Middlesex county", "a shotgun", "lolipop candy"):
        assert find_words(typed, rules) == [], typed
    assert all(rule_problem(rule.pattern) is None for rule in rules)


# --- rule_problem --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_RULE_LENGTH + 1), "101 characters"),
        ("por*n", "remove the * in the middle, wildcards go at either end"),
        ("blow * job", "remove the * in the middle"),
        ("* porn", "remove the space next to the *"),
        ("porn *", "remove the space next to the *"),
        ("***", "no letters"),
        ("?!", "no letters"),
        ("one two three four five six", "6 words"),
        ("x", "single letter"),
        ("*a*", "single letter"),
    ],
)
def test_a_pattern_that_cannot_be_a_rule_says_why_and_what_to_do(pattern: str, says: str) -> None:
    problem = rule_problem(pattern)
    assert problem is not None and says in problem
    assert ": " in problem and problem[0].islower() and not problem.endswith(".")


@pytest.mark.parametrize(
    "pattern", ["nsfw", "*porn*", "porn*", "*porn", "blow job", "n.s.f.w", "one two three four five", " ok "]
)
def test_a_good_pattern_has_no_problem(pattern: str) -> None:
    assert rule_problem(pattern) is None


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(max_size=120))
def test_every_pattern_rule_problem_accepts_compiles_and_matches_itself(pattern: str) -> None:
    if rule_problem(pattern) is None:
        rule = WordRule(pattern)
        assert find_words(pattern.strip().strip("*"), [rule]) != []


# --- the compiled list ---------------------------------------------------------------------------


def test_a_list_is_compiled_once_and_reused() -> None:
    rules = [WordRule("nsfw"), WordRule("gore", WordAction.WARN)]
    same = [WordRule("nsfw"), WordRule("gore", WordAction.WARN)]
    assert word_list(rules, ["class"]) is word_list(tuple(same), ("class",))
    assert word_list(rules) is not word_list(rules, ["class"])
    assert word_list(rules) is not word_list([WordRule("nsfw"), WordRule("gore")])


def test_a_big_list_and_a_long_rule_compile_and_match() -> None:
    long_rule = "a" + "bcdefghijk" * 9 + "z"
    rules = [WordRule(f"w{index:04}x") for index in range(1000)] + [WordRule(long_rule), WordRule("*q9q*")]
    words = WordList(rules)
    assert [m.rule.pattern for m in words.find(f"w0999x and {long_rule.upper()} zq9qz")] == [
        "w0999x",
        long_rule,
        "*q9q*",
    ]
    spelled = " ".join(long_rule)
    assert words.find(f"w999x w10000x {spelled}") == [WordMatch(rules[1000], 14, 14 + len(spelled), spelled)]


# --- properties ----------------------------------------------------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
NOISE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)  # surrogates too
TRICKY = st.sampled_from(
    ["\u200b", "\u200d", "ß", "ﬁ", "½", "Ⅻ", "é", "e\u0301", "ａ", "\x00", "İ", "ǅ", "㎏", "ǆ", "ﬀ", "Ꭺ",
     "ᴀ", "ø", "1", "l", "i", "0", "@", "$", " ", ".", "-", "::", ":1.5)", "(", "ⓐ", "性", "δ"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(word=WORDS, before=NOISE, after=NOISE)
def test_a_rule_word_set_apart_is_always_found_where_it_was_typed(word: str, before: str, after: str) -> None:
    typed = f"{before} {word} {after}"
    matches = find_words(typed, [WordRule(word)])
    assert matches, typed
    assert normalise(matches[0].typed).text.replace(" ", "") != ""


@settings(max_examples=500, deadline=None)
@given(typed=ANY_TEXT)
def test_any_text_is_read_and_normalised_in_the_same_shape(typed: str) -> None:
    text = normalise(typed)
    assert len(text.text) == len(text.origin)
    assert "  " not in text.text and text.text == text.text.strip()
    assert all(char == " " or char.isalnum() for char in text.text)
    assert all(0 <= index < len(typed) for index in text.origin)
    assert list(text.origin) == sorted(text.origin)
    for match in find_words(typed, RULES, ("class",)):
        assert 0 <= match.start < match.end <= len(typed) and match.typed == typed[match.start : match.end]


@settings(max_examples=500, deadline=None)
@given(typed=ANY_TEXT | st.lists(TRICKY | WORDS).map("".join))
def test_normalising_twice_changes_nothing(typed: str) -> None:
    once = normalise(typed).text
    assert normalise(once).text == once


def reference_find(typed: str, rules: list[WordRule], allowed: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """The filter without its speed: every rule's regex tried at every place of the normalised text."""
    text = normalise(typed)
    allow = {normalise(word).text for word in allowed} - {""}
    found = []
    for rule in dict.fromkeys(rules):
        for place in range(len(text.text)):
            hit = rule.regex.match(text.text, place)
            if hit is None:
                continue
            start = text.text.rfind(" ", 0, hit.start()) + 1
            end = text.text.find(" ", hit.end())
            if text.text[start : None if end == -1 else end] in allow:
                continue
            found.append((rule, *text.span(*hit.span())))
            break
    found.sort(key=lambda item: (item[1], item[0].action != WordAction.BLOCK))
    return [(rule.pattern, start, end) for rule, start, end in found]


@st.composite
def disguised(draw: st.DrawFn, words: list[str]) -> str:
    """Text made of rule words written every way the filter reads through, among other words."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        word = draw(st.sampled_from(words) | WORDS)
        how = draw(st.sampled_from(["plain", "spaced", "dotted", "stretched", "leet", "upper", "hidden"]))
        if how == "spaced":
            word = " ".join(word)
        elif how == "dotted":
            word = ".".join(word)
        elif how == "stretched":
            word = "".join(char * draw(st.integers(1, 6)) for char in word)
        elif how == "leet":
            word = word.replace("i", "1").replace("l", "1").replace("o", "0").replace("s", "$")
        elif how == "upper":
            word = word.upper()
        elif how == "hidden":
            word = "\u200b".join(word)
        parts += [word, draw(st.lists(TRICKY, max_size=2).map("".join) | st.just(" "))]
    return "".join(parts)


FILTER_WORDS = ["ass", "sex", "sexy", "blowjob", "kill", "porn", "class", "assassin", "xxx", "ii", "lol"]
FILTER_RULES = st.lists(
    st.sampled_from(["ass", "sex", "sexy", "blow job", "kill", "k1ll", "xxx", "lol", "ii", "s e x"])
    .flatmap(lambda word: st.sampled_from([word, f"*{word}", f"{word}*", f"*{word}*"]))
    .flatmap(lambda pattern: st.sampled_from([WordRule(pattern), WordRule(pattern, WordAction.WARN)])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), rules=FILTER_RULES, allowed=st.lists(st.sampled_from(FILTER_WORDS), max_size=2))
def test_the_compiled_list_finds_what_trying_every_rule_everywhere_finds(
    data: st.DataObject, rules: list[WordRule], allowed: list[str]
) -> None:
    typed = data.draw(disguised(FILTER_WORDS))
    found = [(m.rule.pattern, m.start, m.end) for m in WordList(rules, allowed).find(typed)]
    assert found == reference_find(typed, rules, tuple(allowed))
