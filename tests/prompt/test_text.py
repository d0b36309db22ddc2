"""`emphasis_segments`: the weighted runs the worker builds embeddings from."""

from __future__ import annotations

import pytest

from sojourn.prompt import PromptError, emphasis_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", []),
        ("a red fox", [("a red fox", 1.0)]),
        ("a (red:1.3) fox", [("a ", 1.0), ("red", 1.3), (" fox", 1.0)]),
        ("(red:1.3)(fox:0)", [("red", 1.3), ("fox", 0.0)]),
        ("(deep red:1) fox", [("deep red", 1.0), (" fox", 1.0)]),
        ("(red: .5 )", [("red", 0.5)]),
        ("(a:b:2)", [("a:b", 2.0)]),
        ("(unweighted) and (unbalanced", [("(unweighted) and (unbalanced", 1.0)]),
        ("((red:1.5))", [("(", 1.0), ("red", 1.5), (")", 1.0)]),
        ("(red:x) ( :2) (:2)", [("(red:x) ( :2) (:2)", 1.0)]),
        ("(red:3)", [("red", 3.0)]),
    ],
)
def test_segments(text, segments):
    assert emphasis_segments(text) == segments


@pytest.mark.parametrize("text", ["(red:3.01)", "(red:-0.5)", "(red:" + "9" * 400 + ")"])
def test_weights_outside_zero_to_three_are_errors(text):
    with pytest.raises(PromptError, match="from 0 to 3"):
        emphasis_segments(text)
