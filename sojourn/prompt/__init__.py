"""The Midjourney prompt language: `/imagine` text → validated `JobSpec`s, and back.

Imports neither discord nor torch: the bot, the job service and the worker all use it.
"""

from sojourn.prompt.canonical import to_canonical
from sojourn.prompt.errors import PromptError
from sojourn.prompt.parser import parse_prompt
from sojourn.prompt.rules import PromptRules
from sojourn.prompt.text import emphasis_segments

__all__ = ["PromptError", "PromptRules", "emphasis_segments", "parse_prompt", "to_canonical"]
