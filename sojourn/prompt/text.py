"""Prompt text: allowed characters, whitespace, `text::weight` parts and `(word:1.2)` emphasis."""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal

from sojourn.prompt.errors import PromptError, excerpt
from sojourn.prompt.parameters import is_parameter_token
from sojourn.spec import PromptPart

_WHITESPACE_CONTROLS = frozenset("\t\n\r\v\f")
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
# A weight must end at a space (or the end), so `a::2b` is `a` then `2b`.
_PART_BREAK = re.compile(rf"::(?:(?P<weight>{_NUMBER})(?=\s|$))?")
_EMPHASIS = re.compile(rf"\((?P<inner>[^()]+):\s*(?P<weight>{_NUMBER})\s*\)")
MAX_EMPHASIS = 3.0


def check_characters(text: str) -> None:
    """Reject invisible control and format characters (tabs and newlines are whitespace)."""
    for char in text:
        # Cs: half of a surrogate pair, which no text can store on its own.
        if unicodedata.category(char) in ("Cc", "Cf", "Cs") and char not in _WHITESPACE_CONTROLS:
            raise PromptError(
                f"the prompt contains the invisible character U+{ord(char):04X}: remove it "
                "(retyping the text helps if it was pasted)"
            )


def fold_whitespace(text: str) -> str:
    """Tabs, newlines and runs of spaces become single spaces; the ends are trimmed."""
    return " ".join(text.split())


def split_multi_prompt(text: str) -> tuple[PromptPart, ...]:
    """Split `a::2 b::-0.5 c` into weighted parts; a part without a weight weighs 1."""
    parts: list[PromptPart] = []
    start = 0
    for part_break in _PART_BREAK.finditer(text):
        parts.append(_part(text[start : part_break.start()], part_break.group(0), part_break["weight"]))
        start = part_break.end()
    if text[start:].strip():
        parts.append(_part(text[start:], None, None))
    if not parts:
        raise PromptError("the prompt is empty: describe what to imagine")
    total = sum(part.weight for part in parts)
    if not total > 0:
        raise PromptError(
            f"the prompt weights add up to {format_number(total)}: they must add up to more than 0, "
            "so raise a weight or drop a negative one"
        )
    return tuple(parts)


def _part(text: str, separator: str | None, weight_text: str | None) -> PromptPart:
    text = text.strip()
    if not text:
        shown = excerpt(separator or "::")
        raise PromptError(f"there is no text before {shown}: write text{shown}, e.g. dog{shown}")
    first_word = text.split(" ", 1)[0]
    if is_parameter_token(first_word):
        raise PromptError(f"{excerpt(first_word)} is glued to the '::' before it: put a space between them")
    weight = 1.0
    if weight_text is not None:
        weight = float(weight_text) + 0.0  # + 0.0 turns -0.0 into 0.0
        if not math.isfinite(weight):
            raise PromptError(
                f"the weight in {excerpt(separator or '::')} is too large: use a smaller number"
            )
    emphasis_segments(text)  # validates the (word:1.2) weights
    return PromptPart(text=text, weight=weight)


def emphasis_segments(text: str) -> list[tuple[str, float]]:
    """Split text into (text, weight) runs: `(inner:w)` weighs w, everything else 1.0."""
    segments: list[tuple[str, float]] = []
    literal_start = 0
    for emphasis in _EMPHASIS.finditer(text):
        if not emphasis["inner"].strip():
            continue  # `( :1.2)` emphasises nothing: keep it as text
        weight = float(emphasis["weight"]) + 0.0
        if not 0 <= weight <= MAX_EMPHASIS:
            raise PromptError(
                f"{excerpt(emphasis.group(0))} has the weight {excerpt(emphasis['weight'])}: emphasis "
                f"weights go from 0 to {MAX_EMPHASIS:g}, e.g. (word:1.2)"
            )
        if emphasis.start() > literal_start:
            segments.append((text[literal_start : emphasis.start()], 1.0))
        segments.append((emphasis["inner"], weight))
        literal_start = emphasis.end()
    if literal_start < len(text):
        segments.append((text[literal_start:], 1.0))
    return segments


def format_number(number: float) -> str:
    """Shortest plain decimal that reads back as the same float (no exponent, no trailing .0)."""
    text = format(Decimal(repr(number)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
