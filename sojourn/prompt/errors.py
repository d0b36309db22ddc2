"""The one exception the prompt parser raises."""

from __future__ import annotations

from sojourn.errors import UserError


class PromptError(UserError, ValueError):
    """A prompt that cannot be rendered; `.message` tells the user what to change."""
