"""What the parser needs from the settings: the presets and the limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sojourn.settings import Limits, ModelPreset, Settings

NIJI_PREFIX = "niji "

# A key must be writable as `--v KEY` or `--niji N`, or canonical text could not name it.
_PRESET_KEY = re.compile(r"(?:niji )?[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class PromptRules:
    """The presets and limits a server's prompts are checked against."""

    presets: Mapping[str, ModelPreset]
    default_preset: str
    limits: Limits

    def __post_init__(self) -> None:
        for key in self.presets:
            if not _PRESET_KEY.fullmatch(key):
                raise ValueError(f"preset name {key!r} must be one word, or 'niji ' and one word")
        if self.default_preset not in self.presets:
            raise ValueError(f"default_preset {self.default_preset!r} is not one of {list(self.presets)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptRules:
        return cls(
            presets=MappingProxyType(dict(settings.presets)),
            default_preset=settings.default_preset,
            limits=settings.limits,
        )

    def version_choices(self) -> str:
        """The versions as a user would type them, for error messages."""
        return ", ".join(preset_parameter(key) for key in self.presets)


def preset_parameter(key: str) -> str:
    """The parameter that selects a preset: `--niji 6` for "niji 6", else `--v KEY`."""
    if key.startswith(NIJI_PREFIX):
        return f"--niji {key.removeprefix(NIJI_PREFIX)}"
    return f"--v {key}"
