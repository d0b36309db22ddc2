"""Property tests: any text parses or fails with a PromptError, and canonical text reads back unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sojourn.prompt import PromptError, emphasis_segments, parse_prompt, to_canonical
from tests.prompt.helpers import RULES

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)

WORDS = st.sampled_from(
    [
        "fox", "a red car", "snow", "é", "🙂", "日本", ":", "::", "::2", "::-0.5", "::.5", "::0", "::+1",
        "(red:1.2)", "(red:5)", "(x:-1)", "(unbalanced", "ok)", "(a:b)", "—", "–", "-", "--", ",", "\\",
        "\\,", "\\{", "\\}", "{", "}", "{a, b}", "{red, {blue, green}}", "{1, 2, 3}", "\t", "\n", "  ",
        "a::", "b:::", "1e5", "(fox:{1, 2})",
    ]
)  # fmt: skip
PARAMETER_NAMES = st.sampled_from(
    [
        "--ar", "—ar", "–ar", "--aspect", "--seed", "--no", "--chaos", "--c", "--s", "--stylize", "--w",
        "--weird", "--stop", "--q", "--quality", "--style", "--v", "--version", "--niji", "--tile",
        "--private", "--stealth", "--public", "--fast", "--relax", "--r", "--repeat", "--foo", "--AR",
        "—tile", "--", "--{ar, seed}", "--iw",
    ]
)  # fmt: skip
PARAMETER_VALUES = st.sampled_from(
    [
        "16:9", "9:1", "1:1", "0:1", "3:2", "{1:1, 2:3}", "5", "0", "-1", "4294967296", "raw", "cute", "6",
        "6.0", "7", ".25", "2", "3", "text, watermark", "yes", "{1,2}", "a\\, b", "(text:2)", "{", "",
    ]
) | st.integers(-5, 5000).map(str)  # fmt: skip


@st.composite
def prompt_like_text(draw: st.DrawFn) -> str:
    """Prompt-shaped text: words, then parameters with good and bad values, glued or spaced at random."""
    separators = st.sampled_from([" ", " ", "  ", "", "\t", "\u200b"])
    text = "".join(
        word + separator for word, separator in draw(st.lists(st.tuples(WORDS, separators), max_size=8))
    )
    for _ in range(draw(st.integers(0, 5))):
        text += " " + draw(PARAMETER_NAMES)
        for _ in range(draw(st.integers(0, 2))):
            text += " " + draw(PARAMETER_VALUES | WORDS)
    return text


@st.composite
def valid_prompt(draw: st.DrawFn) -> str:
    """Mostly valid prompts with awkward characters, so the round trip is exercised often."""
    awkward_word = st.sampled_from(
        ["fox", "red", "é", ":", "a:", ":b", "\\", "\\\\", "\\,", "\\{", "\\}", ",", "(red:1.5)", "(a)", "—"]
    )
    part = st.lists(awkward_word, min_size=1, max_size=4).map(" ".join)
    weight = st.sampled_from(["", "2", "0.5", "-0.25", ".75", "1.0", "3"])
    parts = draw(st.lists(st.tuples(part, weight), min_size=1, max_size=3))
    text = " ".join(f"{words}::{w}" if w else words for words, w in parts) + " " + draw(part)
    valid_parameters = st.sampled_from(
        [
            "--ar 16:9", "--ar 2:3", "--ar 32:18", "--seed 0", "--seed 4294967295", "--no text, a\\, b",
            "--no \\{x\\}, \\", "--c 50", "--s 1000", "--w 3000", "--stop 10", "--q .25", "--q 2",
            "--style raw", "--v 6", "--niji", "--tile", "--stealth", "--public", "--relax", "--r 2",
            "--ar {1:1, 4:1}", "--s {0, 250}", "--iw 0", "--iw 1.75", "--iw 3", "--iw .5",
        ]
    )  # fmt: skip
    return " ".join([text, *draw(st.lists(valid_parameters, max_size=6))])


DEFAULTS = st.sampled_from(
    ["", "--q 2 --s 250 --ar 16:9 --private --relax --no text, watermark", "--no Text"]
)


def parse_or_reject(text: str, defaults: str = "") -> list:
    try:
        return parse_prompt(text, RULES, defaults)
    except PromptError as error:
        assert error.message
        return []


def assert_round_trip(specs: list) -> None:
    for spec in specs:
        canonical = to_canonical(spec)
        assert parse_prompt(canonical, RULES) == [spec], canonical
        assert to_canonical(parse_prompt(canonical, RULES)[0]) == canonical


@PROPERTY_SETTINGS
@given(st.text())
def test_any_text_parses_or_is_rejected(text):
    assert_round_trip(parse_or_reject(text))


@PROPERTY_SETTINGS
@given(prompt_like_text(), DEFAULTS)
def test_prompt_like_text_parses_or_is_rejected(text, defaults):
    assert_round_trip(parse_or_reject(text, defaults))


@PROPERTY_SETTINGS
@given(valid_prompt(), DEFAULTS)
def test_canonical_text_reads_back_as_the_same_spec(text, defaults):
    assert_round_trip(parse_or_reject(text, defaults))


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.sampled_from("ab :()-.0123456789")))
def test_emphasis_segments_are_the_text_in_order(text):
    try:
        segments = emphasis_segments(text)
    except PromptError:
        return
    if "(" not in text:
        assert segments == ([(text, 1.0)] if text else [])
    position = 0
    for run, weight in segments:
        assert run
        assert 0 <= weight <= 3
        position = text.index(run, position) + len(run)
