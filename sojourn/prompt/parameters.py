"""`--name value` parameters: finding them, reading them, and merging them with saved defaults."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation

from sojourn.prompt.aspect import MAX_RATIO
from sojourn.prompt.errors import PromptError, excerpt
from sojourn.prompt.rules import NIJI_PREFIX, PromptRules
from sojourn.spec import IMAGE_WEIGHT_MAX, SEED_MAX

# Phones turn `--` into an em dash (U+2014) or an en dash (U+2013); all three start a parameter.
_PARAMETER_TOKEN = re.compile(r"(?:--|—|–)(?P<name>[A-Za-z]\S*)")

_ALIASES = {
    "ar": "ar", "aspect": "ar",
    "seed": "seed",
    "no": "no",
    "chaos": "chaos", "c": "chaos",
    "stylize": "stylize", "s": "stylize",
    "weird": "weird", "w": "weird",
    "stop": "stop",
    "quality": "quality", "q": "quality",
    "style": "style",
    "v": "version", "version": "version",
    "niji": "niji",
    "tile": "tile",
    "private": "private", "stealth": "private", "public": "public",
    "fast": "fast", "relax": "relax",
    "repeat": "repeat", "r": "repeat",
    "iw": "iw",
}  # fmt: skip
_FLAGS = frozenset({"tile", "private", "public", "fast", "relax"})
_WHOLE_NUMBER_RANGES = {
    "seed": (0, SEED_MAX),
    "chaos": (0, 100),
    "stylize": (0, 1000),
    "weird": (0, 3000),
    "stop": (10, 100),
    "repeat": (1, 40),
}
_PARAMETER_LIST = (
    "--ar, --seed, --no, --chaos, --stylize, --weird, --stop, --quality, --style, --v, --niji, --tile, "
    "--private, --public, --fast, --relax, --repeat, --iw"
)
_QUALITIES = {Decimal("0.25"): 0.25, Decimal("0.5"): 0.5, Decimal("1"): 1.0, Decimal("2"): 2.0}
_VALUE_HINTS = {
    "ar": "width:height in whole numbers, from 1:4 to 4:1, e.g. --ar 16:9",
    "no": "what to leave out, as a comma list, e.g. --no text, watermark",
    "quality": "one of .25, .5, 1 or 2",
    "style": "raw (--style raw)",
    "iw": "a number from 0 to 3, e.g. --iw 1.5 (how much the attached image counts)",
    **{name: f"a whole number from {low} to {high}" for name, (low, high) in _WHOLE_NUMBER_RANGES.items()},
}


def is_parameter_name(name: str) -> bool:
    """Whether `name` (without dashes) is one of the language's own parameters or aliases."""
    return name.lower() in _ALIASES


def is_parameter_token(word: str) -> bool:
    """Whether a word starts a parameter: a dash (or two) and a letter."""
    return _PARAMETER_TOKEN.fullmatch(word) is not None


@dataclass(frozen=True)
class WrittenParameter:
    """One parameter as typed: `token` is e.g. "—ar", `values` the words up to the next parameter."""

    token: str
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.token.lstrip("-—–").lower()


@dataclass
class ParameterValues:
    """What the parameters asked for; None where they did not say."""

    aspect: tuple[int, int] | None = None  # reduced width:height
    seed: int | None = None
    negative: list[str] = field(default_factory=list)
    chaos: int | None = None
    stylize: int | None = None
    weird: int | None = None
    stop: int | None = None
    quality: float | None = None
    raw: bool | None = None
    preset: str | None = None
    tile: bool | None = None
    repeat: int | None = None
    private: bool | None = None
    mode: str | None = None
    image_weight: float | None = None

    def overridden_by(self, later: ParameterValues) -> ParameterValues:
        """These values with `later`'s on top; negative lists merge instead."""
        merged = ParameterValues()
        for spec_field in fields(self):
            later_value = getattr(later, spec_field.name)
            earlier_value = getattr(self, spec_field.name)
            setattr(merged, spec_field.name, earlier_value if later_value is None else later_value)
        merged.negative = _without_duplicates(self.negative + later.negative)
        return merged


def split_off_parameters(text: str) -> tuple[str, list[WrittenParameter]]:
    """Split folded text into the prompt and the parameters that follow it."""
    words = text.split(" ") if text else []
    first = next((index for index, word in enumerate(words) if is_parameter_token(word)), len(words))
    parameters: list[WrittenParameter] = []
    values: list[str] = []
    for word in reversed(words[first:]):
        if is_parameter_token(word):
            parameters.append(WrittenParameter(word, tuple(reversed(values))))
            values = []
        else:
            values.append(word)
    return " ".join(words[:first]), parameters[::-1]


def read_parameters(written: list[WrittenParameter], rules: PromptRules) -> ParameterValues:
    """Validate each parameter; a parameter given twice keeps its last value (`--no` lists add up)."""
    values = ParameterValues()
    for parameter in written:
        _read_parameter(parameter, values, rules)
    values.negative = _without_duplicates(values.negative)
    return values


def _read_parameter(parameter: WrittenParameter, values: ParameterValues, rules: PromptRules) -> None:
    kind = _ALIASES.get(parameter.name)
    if kind is None:
        raise _unknown_parameter(parameter)
    if kind in _FLAGS:
        if parameter.values:
            raise PromptError(
                f"{parameter.token} takes no value, but '{excerpt(' '.join(parameter.values))}' follows it: "
                "remove that, or move it before the parameters"
            )
        match kind:
            case "tile":
                values.tile = True
            case "private" | "public":
                values.private = kind == "private"
            case _:
                values.mode = kind
        return
    if kind == "no":
        if not parameter.values:
            raise _missing_value(parameter.token, _VALUE_HINTS[kind])
        values.negative += [item.strip() for item in " ".join(parameter.values).split(",") if item.strip()]
        return
    if kind == "niji":
        values.preset = _niji_preset(parameter, rules)
        return
    hint = f"one of {rules.version_choices()}" if kind == "version" else _VALUE_HINTS[kind]
    value = _single_value(parameter, hint)
    match kind:
        case "ar":
            values.aspect = _aspect(parameter.token, value)
        case "quality":
            values.quality = _quality(parameter.token, value)
        case "iw":
            values.image_weight = _image_weight(parameter.token, value)
        case "style":
            if value.lower() != "raw":
                raise PromptError(
                    f"{parameter.token} {excerpt(value)} is not a style: use {_VALUE_HINTS['style']}"
                )
            values.raw = True
        case "version":
            values.preset = _preset(parameter.token, value, value, rules)
        case "repeat":
            values.repeat = _whole_number(parameter.token, value, kind)
            if values.repeat > rules.limits.max_repeat:
                raise PromptError(
                    f"{parameter.token} {value} is more than this server allows: "
                    f"use a --repeat from 1 to {rules.limits.max_repeat}"
                )
        case _:
            setattr(values, kind, _whole_number(parameter.token, value, kind))


def _single_value(parameter: WrittenParameter, hint: str) -> str:
    if not parameter.values:
        raise _missing_value(parameter.token, hint)
    if len(parameter.values) > 1:
        raise _text_after_parameters(parameter.values[1:])
    return parameter.values[0]


def _whole_number(token: str, value: str, kind: str) -> int:
    low, high = _WHOLE_NUMBER_RANGES[kind]
    if not re.fullmatch(r"-?[0-9]+", value):
        raise PromptError(f"{token} {excerpt(value)} is not a whole number: use {_VALUE_HINTS[kind]}")
    digits = value.lstrip("-").lstrip("0") or "0"
    # Compare lengths first: a long enough string of digits is out of range, and int() would refuse it.
    if value.startswith("-") or len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise PromptError(f"{token} {excerpt(value)} is out of range: use {_VALUE_HINTS[kind]}")
    return int(digits)


def _aspect(token: str, value: str) -> tuple[int, int]:
    shown = excerpt(value)
    ratio = re.fullmatch(r"([0-9]+):([0-9]+)", value)
    if ratio is None:
        raise PromptError(f"{token} {shown} is not an aspect ratio: use {_VALUE_HINTS['ar']}")
    try:
        width, height = int(ratio[1]), int(ratio[2])
    except ValueError:  # more digits than int() converts
        raise PromptError(f"{token} {shown} is too long: use {_VALUE_HINTS['ar']}") from None
    if width == 0 or height == 0:
        raise PromptError(f"{token} {shown} has a side of 0: use {_VALUE_HINTS['ar']}")
    if width > MAX_RATIO * height:
        raise PromptError(f"{token} {shown} is too wide: use a ratio between 1:4 and 4:1")
    if height > MAX_RATIO * width:
        raise PromptError(f"{token} {shown} is too tall: use a ratio between 1:4 and 4:1")
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


def _quality(token: str, value: str) -> float:
    try:
        quality = _QUALITIES.get(Decimal(value)) if re.fullmatch(r"[0-9]*\.?[0-9]*", value) else None
    except InvalidOperation:  # "." alone
        quality = None
    if quality is None:
        raise PromptError(f"{token} {excerpt(value)} is not a quality: use {_VALUE_HINTS['quality']}")
    return quality


def _image_weight(token: str, value: str) -> float:
    shown = excerpt(value)
    if not re.fullmatch(r"[0-9]*\.?[0-9]+|[0-9]+\.", value) or len(value) > 12:
        raise PromptError(f"{token} {shown} is not a number: use {_VALUE_HINTS['iw']}")
    weight = float(Decimal(value))
    if not 0 <= weight <= IMAGE_WEIGHT_MAX:
        raise PromptError(f"{token} {shown} is out of range: use {_VALUE_HINTS['iw']}")
    return weight


def _niji_preset(parameter: WrittenParameter, rules: PromptRules) -> str:
    if len(parameter.values) > 1:
        raise _text_after_parameters(parameter.values[1:])
    if parameter.values:
        value = parameter.values[0]
        return _preset(parameter.token, value, NIJI_PREFIX + value, rules)
    niji_keys = [key for key in rules.presets if key == "niji" or key.startswith(NIJI_PREFIX)]
    if not niji_keys:
        raise PromptError(f"this server has no niji version: use one of {rules.version_choices()}")
    return max(niji_keys, key=lambda key: _version_number(key.removeprefix("niji").strip()))


def _preset(token: str, value: str, key: str, rules: PromptRules) -> str:
    # "6.0" means "6" and the other way round, when only one of them is a preset.
    for candidate in (key, key.removesuffix(".0"), key + ".0"):
        if candidate in rules.presets:
            return candidate
    raise PromptError(f"{token} {excerpt(value)} is not a version here: use one of {rules.version_choices()}")


def _version_number(version: str) -> float:
    return float(version) if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", version) else -math.inf


def _missing_value(token: str, hint: str) -> PromptError:
    return PromptError(f"{token} needs a value: {hint}")


def _text_after_parameters(words: tuple[str, ...]) -> PromptError:
    return PromptError(
        f"'{excerpt(' '.join(words))}' comes after the parameters: write the prompt first and put "
        "all parameters (--ar, --no …) at the end"
    )


def _unknown_parameter(parameter: WrittenParameter) -> PromptError:
    spelled_out = [alias for alias in _ALIASES if len(alias) > 1]
    close = difflib.get_close_matches(parameter.name, spelled_out, n=1, cutoff=0.6)
    token = excerpt(parameter.token)
    if close:
        return PromptError(f"unknown parameter {token}: did you mean --{close[0]}?")
    return PromptError(f"unknown parameter {token}: the parameters are {_PARAMETER_LIST}")


def _without_duplicates(items: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if item.casefold() not in seen:
            seen.add(item.casefold())
            kept.append(item)
    return kept
