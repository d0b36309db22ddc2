"""`{a, b}` permutations: counted, then expanded over the whole text, parameters included."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from sojourn.prompt.errors import PromptError

ESCAPABLE = ",{}"  # `\,` `\{` `\}` are literal; a backslash before anything else is itself
MAX_NESTING = 10


@dataclass
class _Group:
    """`{item, item, …}`: each item is a sequence of literal text and nested groups."""

    items: list[_Sequence] = field(default_factory=lambda: [[]])


_Sequence = list[str | _Group]


def expand_permutations(text: str, max_permutations: int) -> list[str]:
    """Every expansion of `text`, first group varying slowest; too many is an error."""
    sequence = _parse(text)
    count = _count(sequence)
    if count > max_permutations:
        raise PromptError(
            f"this prompt makes {_describe_count(count)} permutations and this server allows at most "
            f"{max_permutations}: use fewer {{…}} options"
        )
    return _expand(sequence)


def count_permutations(text: str) -> int:
    """How many prompts `text` expands to, without expanding it."""
    return _count(_parse(text))


def _parse(text: str) -> _Sequence:
    root: _Sequence = []
    current = root
    # For each open group: the sequence it sits in, the group, and where its brace is.
    open_groups: list[tuple[_Sequence, _Group, int]] = []
    literal: list[str] = []

    def end_literal() -> None:
        if literal:
            current.append("".join(literal))
            literal.clear()

    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in ESCAPABLE:
            literal.append(text[index + 1])
            index += 2
            continue
        if char == "{":
            end_literal()
            group = _Group()
            current.append(group)
            open_groups.append((current, group, index))
            if len(open_groups) > MAX_NESTING:
                raise PromptError(
                    f"the {{ at character {index + 1} nests permutations more than {MAX_NESTING} deep: "
                    "flatten them"
                )
            current = group.items[-1]
        elif char == "," and open_groups:
            end_literal()
            group = open_groups[-1][1]
            group.items.append([])
            current = group.items[-1]
        elif char == "}":
            if not open_groups:
                raise PromptError(
                    f"the }} at character {index + 1} has no matching {{: "
                    "remove it, or write \\} for a brace"
                )
            end_literal()
            current = open_groups.pop()[0]
        else:
            literal.append(char)
        index += 1
    if open_groups:
        position = open_groups[0][2] + 1
        raise PromptError(
            f"the {{ at character {position} is never closed: close it with }}, or write \\{{ for a brace"
        )
    end_literal()
    return root


def _count(sequence: _Sequence) -> int:
    return math.prod(
        sum(_count(item) for item in piece.items) for piece in sequence if isinstance(piece, _Group)
    )


def _expand(sequence: _Sequence) -> list[str]:
    choices = [[piece] if isinstance(piece, str) else _expand_group(piece) for piece in sequence]
    return ["".join(combination) for combination in itertools.product(*choices)]


def _expand_group(group: _Group) -> list[str]:
    return [option.strip() for item in group.items for option in _expand(item)]


def _describe_count(count: int) -> str:
    return str(count) if count < 1_000_000 else "over a million"
