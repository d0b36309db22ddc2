"""The canonical `/imagine` text of a spec: every parameter spelled out, reads back as the same spec."""

from __future__ import annotations

from sojourn.prompt.rules import preset_parameter
from sojourn.prompt.text import format_number
from sojourn.spec import JobSpec, PromptPart


def to_canonical(spec: JobSpec) -> str:
    """Canonical text for `spec`; `parse_prompt(to_canonical(spec), rules) == [spec]`."""
    words = [_prompt_text(spec.prompt), "--ar", spec.aspect]
    if spec.seed is not None:
        words += ["--seed", str(spec.seed)]
    if spec.negative_prompt:
        words += ["--no", _escape(spec.negative_prompt)]
    words += [
        "--chaos", str(spec.chaos),
        "--stylize", str(spec.stylize),
        "--quality", format_number(spec.quality),
        "--stop", str(spec.stop),
    ]  # fmt: skip
    if spec.weird:
        words += ["--weird", str(spec.weird)]
    if spec.tile:
        words.append("--tile")
    if spec.raw:
        words += ["--style", "raw"]
    if spec.image_weight != 1.0:
        words += ["--iw", format_number(spec.image_weight)]
    words += [
        preset_parameter(spec.preset),
        "--repeat", str(spec.repeat),
        "--private" if spec.private else "--public",
        f"--{spec.mode}",
    ]  # fmt: skip
    return " ".join(words)


def _prompt_text(parts: tuple[PromptPart, ...]) -> str:
    if len(parts) == 1 and parts[0].weight == 1:
        return _escape(parts[0].text)
    return " ".join(_weighted_part(part) for part in parts)


def _weighted_part(part: PromptPart) -> str:
    # "a:" + "::2" would read as "a" + ":::2"; a space keeps the part's own colon.
    separator = " ::" if part.text.endswith(":") else "::"
    return f"{_escape(part.text)}{separator}{format_number(part.weight)}"


def _escape(text: str) -> str:
    """Escape what permutation expansion would otherwise consume: braces, and a comma after a backslash."""
    escaped: list[str] = []
    for char in text:
        if char in "{}" or (char == "," and escaped and escaped[-1] == "\\"):
            escaped.append("\\")
        escaped.append(char)
    return "".join(escaped)
