"""`to_canonical`: every parameter written out, in a fixed order, and read back unchanged."""

from __future__ import annotations

import pytest

from sojourn.prompt import parse_prompt, to_canonical
from tests.prompt.helpers import RULES, parse_one


def test_a_plain_prompt_spells_out_every_default():
    assert to_canonical(parse_one("fox")) == (
        "fox --ar 1:1 --chaos 0 --stylize 100 --quality 1 --stop 100 --v 6 --repeat 1 --public --fast"
    )


def test_every_parameter_in_order():
    spec = parse_one(
        "sky::2 sea::-0.5 --fast --stealth --r 2 --niji --style raw --tile --weird 7 --stop 50 --q .5 "
        "--s 20 --c 3 --no boats, birds --seed 42 --ar 3:2"
    )
    assert to_canonical(spec) == (
        "sky::2 sea::-0.5 --ar 3:2 --seed 42 --no boats, birds --chaos 3 --stylize 20 --quality 0.5 "
        "--stop 50 --weird 7 --tile --style raw --niji 6 --repeat 2 --private --fast"
    )


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("fox::2", "fox::2"),
        ("fox::1", "fox"),
        ("a: ::2 b", "a: ::2 b::1"),
        (r"\{curly\}", r"\{curly\}"),
        (r"back\slash\, comma", r"back\slash, comma"),
        (r"{a\\\, b}", r"a\\\, b"),
        ("a::0.1000", "a::0.1"),
        ("a::" + "1" * 30, "a::1111111111111111" + "0" * 14),  # the float's digits, no exponent
    ],
)
def test_prompt_text_is_escaped_to_read_back(text, prompt):
    spec = parse_one(text)
    canonical = to_canonical(spec)
    assert canonical.startswith(prompt + " --ar ")
    assert parse_prompt(canonical, RULES) == [spec]


def test_defaults_are_folded_into_the_canonical_text():
    spec = parse_one("fox --no snow", "--no text --relax")
    canonical = to_canonical(spec)
    assert "--no text, snow" in canonical
    assert canonical.endswith("--relax")
    assert parse_prompt(canonical, RULES) == [spec]
