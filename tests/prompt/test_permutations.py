"""`{a, b}` permutations expand first, over the whole text."""

from __future__ import annotations

import time

import pytest

from sojourn.prompt import parse_prompt
from sojourn.prompt.permutations import MAX_NESTING, expand_permutations
from sojourn.settings import ModelPreset
from tests.prompt.helpers import LIMITS, RULES, rejection, rules_with


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("a {red, blue} car", ["a red car", "a blue car"]),
        ("{a, {b, c}}", ["a", "b", "c"]),
        ("{a,b} {1,2}", ["a 1", "a 2", "b 1", "b 2"]),
        ("{ spaced ,  out }", ["spaced", "out"]),
        ("{a,}x", ["ax", "x"]),
        ("{}", [""]),
        ("no braces, a comma", ["no braces, a comma"]),
        (r"\{literal\} a\, b", ["{literal} a, b"]),
        (r"{one\, two, three}", ["one, two", "three"]),
        (r"back\slash \\{x\}", [r"back\slash \{x}"]),
    ],
)
def test_expansion(text, expanded):
    assert expand_permutations(text, max_permutations=100) == expanded


def test_permutations_reach_parameters():
    specs = parse_prompt("{red, blue} fox --ar {1:1, 16:9}", RULES)
    assert [(spec.prompt[0].text, spec.aspect) for spec in specs] == [
        ("red fox", "1:1"),
        ("red fox", "16:9"),
        ("blue fox", "1:1"),
        ("blue fox", "16:9"),
    ]


def test_escaped_braces_are_literal_text():
    (spec,) = parse_prompt(r"a \{curly\} fox", RULES)
    assert spec.prompt[0].text == "a {curly} fox"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a {red, blue car", "the { at character 3 is never closed"),
        ("a red} car", "the } at character 6 has no matching {"),
        ("{a, {b}", "the { at character 1 is never closed"),
    ],
)
def test_unbalanced_braces_say_where(text, named):
    assert rejection(text).startswith(named)


def test_too_many_permutations_fail_before_expanding():
    started = time.perf_counter()
    message = rejection("{a,b}" * 30)
    assert time.perf_counter() - started < 0.5
    assert message == (
        "this prompt makes over a million permutations and this server allows at most "
        f"{LIMITS.max_permutations}: use fewer {{…}} options"
    )


def test_the_permutation_cap_names_the_count():
    rules = rules_with({"6": ModelPreset()}, "6", max_permutations=3)
    assert len(parse_prompt("{a,b,c} fox", rules)) == 3
    assert "makes 4 permutations" in rejection("{a,b} {c,d} fox", rules=rules)


def test_deep_nesting_is_refused():
    assert "nests permutations" in rejection("{" * (MAX_NESTING + 1) + "a" + "}" * (MAX_NESTING + 1))
    assert len(parse_prompt("{" * MAX_NESTING + "a" + "}" * MAX_NESTING, RULES)) == 1


def test_every_permutation_is_checked():
    assert "--ar 9:1 is too wide" in rejection("fox --ar {1:1, 9:1}")
