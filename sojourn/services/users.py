"""A user's saved preferences: /settings defaults, /prefer option macros and the /prefer suffix.

Defaults are stored in `users.defaults` as the choices (for the settings panel) and as the
parameter string the parser merges under every prompt (`defaults["parameters"]`). Options and
the suffix are text: `--NAME` in a prompt becomes the saved fragment, and the suffix is appended
to every prompt before it is parsed, exactly as if the user had typed them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from sojourn.errors import UserError
from sojourn.prompt import PromptError, PromptRules, is_parameter_name, read_saved_parameters
from sojourn.prompt.text import format_number
from sojourn.services import credits

MAX_OPTIONS = 20
MAX_FRAGMENT_CHARS = 500  # an option's value, or the suffix
OPTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# `--name` as a whole word; the phone's em and en dashes count as `--`, as in the parser.
_OPTION_TOKEN = re.compile(r"(?<!\S)(?:--|—|–)(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)(?!\S)")

QUALITY_CHOICES = (0.25, 0.5, 1.0, 2.0)
STYLIZE_CHOICES = (0, 50, 100, 250, 500, 750, 1000)
ASPECT_CHOICES = ("1:1", "4:3", "3:2", "16:9", "21:9", "3:4", "2:3", "9:16")


class UserDefaults(BaseModel):
    """What /settings chooses; `remix` is kept for the variation buttons (it adds no parameter)."""

    quality: float = 1.0  # one of QUALITY_CHOICES
    stylize: Literal[0, 50, 100, 250, 500, 750, 1000] = 100
    private: bool = False
    mode: Literal["fast", "relax"] = "fast"
    remix: bool = False
    aspect: Literal["1:1", "4:3", "3:2", "16:9", "21:9", "3:4", "2:3", "9:16"] = "1:1"

    @field_validator("quality")
    @classmethod
    def _quality_is_a_choice(cls, quality: float) -> float:
        if quality not in QUALITY_CHOICES:
            raise ValueError(f"quality must be one of {QUALITY_CHOICES}")
        return quality

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> UserDefaults:
        """The saved choices; anything unreadable (an older format) falls back to the default."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            if stored and name in stored:
                try:
                    cls.model_validate({name: stored[name]})
                except ValidationError:
                    continue
                values[name] = stored[name]
        return cls.model_validate(values)

    def as_parameters(self) -> str:
        """The parameters these defaults add under every prompt (only those that differ)."""
        words = []
        if self.aspect != "1:1":
            words.append(f"--ar {self.aspect}")
        if self.quality != 1.0:
            words.append(f"--q {format_number(self.quality)}")
        if self.stylize != 100:
            words.append(f"--s {self.stylize}")
        if self.private:
            words.append("--private")
        if self.mode == "relax":
            words.append("--relax")
        return " ".join(words)

    def to_stored(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "parameters": self.as_parameters()}


@dataclass(frozen=True)
class Preferences:
    defaults: UserDefaults = field(default_factory=UserDefaults)
    options: dict[str, str] = field(default_factory=dict)
    suffix: str = ""


def preferences_of(user: User | None) -> Preferences:
    if user is None:
        return Preferences()
    return Preferences(
        defaults=UserDefaults.from_stored(user.defaults),
        options=dict(user.prefer_options or {}),
        suffix=user.prefer_suffix or "",
    )


async def load_preferences(session: AsyncSession, user_id: int) -> Preferences:
    return preferences_of(await session.get(User, user_id))


def expand_prompt(text: str, options: Mapping[str, str], suffix: str = "") -> str:
    """The prompt as the parser should read it: the suffix appended, `--NAME` options expanded.

    Expansion happens once (an option's value cannot use another option). A `--NAME` that is no
    saved option stays as typed, so the parser reports it as an unknown parameter.
    """
    if suffix.strip():
        text = f"{text} {suffix.strip()}"
    if not options:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match["name"].lower()
        if is_parameter_name(name):
            return match.group(0)
        return options.get(name, match.group(0))

    return _OPTION_TOKEN.sub(replace, text)


async def update_defaults(
    sessions: async_sessionmaker[AsyncSession], user_id: int, **changes: Any
) -> UserDefaults:
    """Change some saved defaults; raises `UserError` for a value the panel does not offer."""
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        current = UserDefaults.from_stored(user.defaults)
        try:
            updated = UserDefaults.model_validate({**current.model_dump(), **changes})
        except ValidationError:
            raise UserError(f"that setting is not one of the choices: {changes}") from None
        user.defaults = updated.to_stored()
    return updated


async def reset_defaults(sessions: async_sessionmaker[AsyncSession], user_id: int) -> UserDefaults:
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        user.defaults = UserDefaults().to_stored()
    return UserDefaults()


def _check_option_name(name: str) -> str:
    clean = name.strip().lstrip("-—–").lower()
    if not OPTION_NAME.fullmatch(clean):
        raise UserError(
            f"'{name[:40]}' can't be an option name: use 1 to 32 letters, digits, - or _ "
            "(starting with a letter or digit), e.g. mystyle"
        )
    if is_parameter_name(clean):
        raise UserError(f"--{clean} is already a parameter of its own: pick another name, e.g. my{clean}")
    return clean


def _check_fragment(text: str, rules: PromptRules, subject: str, kind: str) -> str:
    """`text` must be parameters only; `subject` names it in messages, `kind` is its plural."""
    clean = " ".join(text.split())
    if len(clean) > MAX_FRAGMENT_CHARS:
        raise UserError(
            f"{subject} is {len(clean)} characters long and the limit is {MAX_FRAGMENT_CHARS}: shorten it"
        )
    try:
        read_saved_parameters(clean, rules, kind)
    except PromptError as error:
        raise UserError(f"{subject} doesn't work: {error.message}") from None
    return clean


async def set_option(
    sessions: async_sessionmaker[AsyncSession], rules: PromptRules, user_id: int, name: str, value: str
) -> str:
    """Save `--name` → `value` (parameters only); returns the name as stored."""
    clean_name = _check_option_name(name)
    clean_value = _check_fragment(value, rules, f"--{clean_name}", "shortcuts")
    if not clean_value:
        raise UserError(f"--{clean_name} needs a value, e.g. --ar 16:9 --s 250")
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        options = dict(user.prefer_options or {})
        if clean_name not in options and len(options) >= MAX_OPTIONS:
            raise UserError(
                f"you have {MAX_OPTIONS} options, the most there can be: "
                "delete one with /prefer option delete, or reuse a name"
            )
        options[clean_name] = clean_value
        user.prefer_options = options
    return clean_name


async def delete_option(sessions: async_sessionmaker[AsyncSession], user_id: int, name: str) -> None:
    clean_name = name.strip().lstrip("-—–").lower()
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        options = dict(user.prefer_options or {})
        if clean_name not in options:
            raise UserError(f"you have no option --{clean_name[:32]}: /prefer option list shows yours")
        del options[clean_name]
        user.prefer_options = options


async def set_suffix(
    sessions: async_sessionmaker[AsyncSession], rules: PromptRules, user_id: int, text: str
) -> str:
    """Save the suffix added to every prompt (parameters and your options); empty text clears it."""
    clean = " ".join(text.split())
    if len(clean) > MAX_FRAGMENT_CHARS:
        raise UserError(
            f"the suffix is {len(clean)} characters long and the limit is {MAX_FRAGMENT_CHARS}: shorten it"
        )
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        if clean:
            # Checked as it will be used: with the user's options expanded.
            _check_fragment(expand_prompt(clean, user.prefer_options or {}), rules, "the suffix", "suffixes")
        user.prefer_suffix = clean
    return clean
