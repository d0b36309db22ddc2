"""The Midjourney prompt language: `/imagine` text → validated `JobSpec`s, and back.

Imports neither discord nor torch: the bot, the job service and the worker all use it.
"""

from sojourn.prompt.canonical import to_canonical
from sojourn.prompt.errors import PromptError
from sojourn.prompt.parameters import is_parameter_name
from sojourn.prompt.parser import parse_prompt, read_saved_parameters
from sojourn.prompt.rules import PromptRules
from sojourn.prompt.text import emphasis_segments

__all__ = [
    "PromptError",
    "PromptRules",
    "emphasis_segments",
    "is_parameter_name",
    "parse_prompt",
    "read_saved_parameters",
    "to_canonical",
]
