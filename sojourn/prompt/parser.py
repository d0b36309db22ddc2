"""`/imagine` text → validated `JobSpec`s, one per permutation."""

from __future__ import annotations

from sojourn.prompt.aspect import resolution_for
from sojourn.prompt.canonical import to_canonical
from sojourn.prompt.errors import PromptError, excerpt
from sojourn.prompt.parameters import ParameterValues, read_parameters, split_off_parameters
from sojourn.prompt.permutations import count_permutations, expand_permutations
from sojourn.prompt.rules import PromptRules
from sojourn.prompt.text import check_characters, emphasis_segments, fold_whitespace, split_multi_prompt
from sojourn.spec import JobSpec


def parse_prompt(text: str, rules: PromptRules, defaults: str = "") -> list[JobSpec]:
    """Parse `/imagine` text, with the user's saved default parameters underneath it."""
    saved = _read_defaults(defaults, rules)
    _check_length(text, rules, "the prompt is")
    check_characters(text)
    specs = [
        _spec_for(expanded, saved, rules)
        for expanded in expand_permutations(text, rules.limits.max_permutations)
    ]
    jobs = sum(spec.repeat for spec in specs)
    if jobs > rules.limits.max_jobs_per_prompt:
        raise PromptError(
            f"this prompt makes {jobs} jobs ({len(specs)} permutations, with --repeat) and this server "
            f"allows at most {rules.limits.max_jobs_per_prompt}: use fewer {{…}} options or a lower --repeat"
        )
    return specs


def _read_defaults(defaults: str, rules: PromptRules) -> ParameterValues:
    if not defaults.strip():
        return ParameterValues()
    try:
        return read_saved_parameters(defaults, rules, "defaults")
    except PromptError as error:
        raise PromptError(f"your saved defaults don't work: {error.message} (change or clear them)") from None


def read_saved_parameters(text: str, rules: PromptRules, subject: str) -> ParameterValues:
    """Check text that must hold parameters only (saved defaults, /prefer options and suffix)."""
    _check_length(text, rules, "they are")
    check_characters(text)
    if count_permutations(text) != 1:
        raise PromptError(f"{{…}} permutations can't be saved as {subject}: write them in the prompt")
    (expanded,) = expand_permutations(text, max_permutations=1)
    prompt_text, written = split_off_parameters(fold_whitespace(expanded))
    if prompt_text:
        raise PromptError(f"'{excerpt(prompt_text)}' is not a parameter: {subject} hold only parameters")
    return read_parameters(written, rules)


def _check_length(text: str, rules: PromptRules, subject: str) -> None:
    limit = rules.limits.max_prompt_chars
    if len(text) > limit:
        raise PromptError(
            f"{subject} {len(text)} characters long and the limit is {limit}: "
            f"shorten it by {len(text) - limit} characters"
        )


def _spec_for(expanded: str, saved: ParameterValues, rules: PromptRules) -> JobSpec:
    prompt_text, written = split_off_parameters(fold_whitespace(expanded))
    values = saved.overridden_by(read_parameters(written, rules))
    if not prompt_text:
        raise PromptError("the prompt is empty: describe what to imagine")
    spec = _build_spec(prompt_text, values, rules)
    # The canonical text is stored and shown, and must parse again, so it has to fit the limit too.
    canonical_length = len(to_canonical(spec))
    limit = rules.limits.max_prompt_chars
    if canonical_length > limit:
        raise PromptError(
            f"with all its parameters written out this prompt is {canonical_length} characters long and the "
            f"limit is {limit}: shorten it by {canonical_length - limit} characters"
        )
    return spec


def _build_spec(prompt_text: str, values: ParameterValues, rules: PromptRules) -> JobSpec:
    preset_name = values.preset or rules.default_preset
    preset = rules.presets[preset_name]
    aspect = values.aspect or (1, 1)
    width, height = resolution_for(*aspect)
    quality = values.quality or 1.0
    stylize = 100 if values.stylize is None else values.stylize
    negative_prompt = ", ".join(values.negative)
    emphasis_segments(negative_prompt)  # validates the (word:1.2) weights
    guidance = preset.guidance_max - (preset.guidance_max - preset.guidance_min) * stylize / 1000
    return JobSpec(
        prompt=split_multi_prompt(prompt_text),
        negative_prompt=negative_prompt,
        aspect=f"{aspect[0]}:{aspect[1]}",
        width=width,
        height=height,
        seed=values.seed,
        steps=max(1, round(preset.steps * quality)),
        guidance=round(guidance, 3),
        chaos=values.chaos or 0,
        stylize=stylize,
        quality=quality,
        stop=values.stop or 100,
        tile=bool(values.tile),
        weird=values.weird or 0,
        raw=bool(values.raw),
        style_suffix="" if values.raw else preset.style_suffix,
        preset=preset_name,
        scheduler=preset.scheduler,
        repeat=values.repeat or 1,
        private=bool(values.private),
        mode="relax" if values.mode == "relax" else "fast",
        image_weight=1.0 if values.image_weight is None else values.image_weight,
    )
