"""Shared rules and shortcuts for the prompt tests."""

from __future__ import annotations

import pytest

from sojourn.prompt import PromptError, PromptRules, parse_prompt
from sojourn.settings import Limits, ModelPreset, Settings
from sojourn.spec import JobSpec

RULES = PromptRules.from_settings(Settings())
LIMITS = RULES.limits


def parse_one(text: str, defaults: str = "", rules: PromptRules = RULES) -> JobSpec:
    specs = parse_prompt(text, rules, defaults)
    assert len(specs) == 1
    return specs[0]


def rejection(text: str, defaults: str = "", rules: PromptRules = RULES) -> str:
    """The user-facing message for a prompt that must be rejected."""
    with pytest.raises(PromptError) as caught:
        parse_prompt(text, rules, defaults)
    return caught.value.message


def rules_with(presets: dict[str, ModelPreset], default: str, **limits: int) -> PromptRules:
    return PromptRules(presets=presets, default_preset=default, limits=Limits(**limits))
