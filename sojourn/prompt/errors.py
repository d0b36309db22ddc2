"""The one exception the prompt parser raises."""

from __future__ import annotations

from sojourn.errors import UserError


class PromptError(UserError, ValueError):
    """A prompt that cannot be rendered; `.message` tells the user what to change."""


def excerpt(text: str, limit: int = 40) -> str:
    """A piece of the user's prompt short enough to quote in an error (a refusal fits one message)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
