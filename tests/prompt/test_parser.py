"""The prompt language, rule by rule: what each parameter does and how each mistake is reported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sojourn.prompt import PromptError, PromptRules, parse_prompt, to_canonical
from sojourn.settings import ModelPreset, Settings
from sojourn.spec import JobSpec, PromptPart
from tests.prompt.helpers import LIMITS, RULES, parse_one, rejection, rules_with


def test_a_plain_prompt_gets_every_default():
    preset = RULES.presets["6"]
    assert parse_one("a red fox") == JobSpec(
        prompt=(PromptPart(text="a red fox", weight=1.0),),
        negative_prompt="",
        aspect="1:1",
        width=1024,
        height=1024,
        seed=None,
        steps=preset.steps,
        guidance=7.25,
        chaos=0,
        stylize=100,
        quality=1.0,
        stop=100,
        tile=False,
        weird=0,
        raw=False,
        style_suffix=preset.style_suffix,
        preset="6",
        scheduler=preset.scheduler,
        repeat=1,
        private=False,
        mode="fast",
    )


def test_the_parser_imports_neither_discord_nor_torch():
    check = "import sys, sojourn.prompt; sys.exit(bool({'discord', 'torch'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


def test_prompt_error_is_a_value_error_with_a_message():
    error = PromptError("bad")
    assert isinstance(error, ValueError)
    assert error.message == "bad"


# Text: whitespace, control characters, length


def test_whitespace_is_folded_and_trimmed():
    spec = parse_one("  a\tred \n\n fox \u00a0 --ar\t16:9  ")
    assert spec.prompt == (PromptPart(text="a red fox"),)
    assert spec.aspect == "16:9"


@pytest.mark.parametrize(("char", "code"), [("\x07", "U+0007"), ("\u200b", "U+200B"), ("\ufeff", "U+FEFF")])
def test_control_characters_are_named(char, code):
    assert code in rejection(f"a fox{char} in snow")


def test_the_length_limit_names_both_numbers():
    too_long = "a" * (LIMITS.max_prompt_chars + 1)
    message = rejection(too_long)
    assert str(LIMITS.max_prompt_chars + 1) in message
    assert str(LIMITS.max_prompt_chars) in message


def test_the_canonical_text_must_fit_the_limit_too():
    # Near the limit, writing out every parameter would make text that could not be parsed again.
    message = rejection("a" * (LIMITS.max_prompt_chars - 10))
    assert "written out" in message
    assert str(LIMITS.max_prompt_chars) in message


@pytest.mark.parametrize("text", ["", "   ", "--ar 16:9", "\n—tile"])
def test_an_empty_prompt_asks_for_a_description(text):
    assert rejection(text) == "the prompt is empty: describe what to imagine"


# Parameters: dashes, position, names


@pytest.mark.parametrize("dash", ["--", "—", "–"])
def test_em_and_en_dashes_start_parameters(dash):
    spec = parse_one(f"fox {dash}ar 16:9 {dash}seed 5 {dash}tile")
    assert (spec.aspect, spec.seed, spec.tile) == ("16:9", 5, True)


def test_a_dash_inside_the_text_stays_text():
    assert parse_one("fox — the quick–brown one --ar 2:1").prompt[0].text == "fox — the quick–brown one"


def test_parameter_names_ignore_case():
    assert parse_one("fox --AR 2:1 --Tile").aspect == "2:1"


def test_text_after_the_parameters_is_rejected():
    message = rejection("fox --ar 16:9 in the snow")
    assert "'in the snow'" in message
    assert "end" in message


def test_an_unknown_parameter_suggests_a_close_name():
    assert rejection("fox --fsat") == "unknown parameter --fsat: did you mean --fast?"
    assert rejection("fox —stylise 5") == "unknown parameter —stylise: did you mean --stylize?"


def test_an_unknown_parameter_without_a_close_name_lists_them():
    message = rejection("fox --foo")
    assert message.startswith("unknown parameter --foo: the parameters are --ar,")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("fox --seed", "--seed needs a value: a whole number from 0 to 4294967295"),
        ("fox --ar", "--ar needs a value"),
        ("fox --c --tile", "--c needs a value: a whole number from 0 to 100"),
        ("fox --no", "--no needs a value"),
        ("fox --q", "--q needs a value: one of .25, .5, 1 or 2"),
        ("fox --style", "--style needs a value: raw"),
        ("fox --v", "--v needs a value: one of --v 6, --niji 6"),
    ],
)
def test_a_missing_value_names_the_parameter_and_its_range(text, named):
    assert named in rejection(text)


def test_a_flag_given_a_value_is_rejected():
    message = rejection("fox --tile yes")
    assert "--tile takes no value" in message
    assert "'yes'" in message


def test_the_last_of_a_repeated_parameter_wins():
    assert parse_one("fox --chaos 5 --c 10").chaos == 10


# --ar


@pytest.mark.parametrize(
    ("value", "aspect", "size"),
    [
        ("1:1", "1:1", (1024, 1024)),
        ("16:9", "16:9", (1344, 768)),
        ("9:16", "9:16", (768, 1344)),
        ("32:18", "16:9", (1344, 768)),
        ("4:1", "4:1", (1536, 640)),
        ("1:4", "1:4", (640, 1536)),
        ("3:2", "3:2", (1216, 832)),
        ("2:3", "2:3", (832, 1216)),
        ("4:3", "4:3", (1152, 896)),
        ("7:4", "7:4", (1344, 768)),
        ("1001:1000", "1001:1000", (1024, 1024)),
        ("1000:1001", "1000:1001", (1024, 1024)),
        ("002:01", "2:1", (1344, 768)),
    ],
)
def test_aspect_ratios_pick_the_nearest_bucket_of_their_orientation(value, aspect, size):
    spec = parse_one(f"fox --ar {value}")
    assert (spec.aspect, (spec.width, spec.height)) == (aspect, size)


def test_aspect_is_an_alias_of_ar():
    assert parse_one("fox --aspect 16:9").aspect == "16:9"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9:1", "--ar 9:1 is too wide: use a ratio between 1:4 and 4:1"),
        ("1:5", "--ar 1:5 is too tall: use a ratio between 1:4 and 4:1"),
        ("0:1", "--ar 0:1 has a side of 0"),
        ("16x9", "--ar 16x9 is not an aspect ratio: use width:height"),
        ("1.5:1", "--ar 1.5:1 is not an aspect ratio"),
        ("-1:2", "--ar -1:2 is not an aspect ratio"),
    ],
)
def test_bad_aspect_ratios_are_named(value, expected):
    assert rejection(f"fox --ar {value}").startswith(expected)


# Whole-number parameters


def test_seed_is_kept_and_absent_means_none():
    assert parse_one("fox --seed 0").seed == 0
    assert parse_one("fox --seed 4294967295").seed == 4294967295
    assert parse_one("fox --seed 007").seed == 7
    assert parse_one("fox").seed is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4294967296", "--seed 4294967296 is out of range: use a whole number from 0 to 4294967295"),
        ("-1", "--seed -1 is out of range"),
        ("99999999999999999999999999", "is out of range"),
        ("1.5", "--seed 1.5 is not a whole number"),
        ("abc", "--seed abc is not a whole number"),
    ],
)
def test_bad_seeds_are_named(value, expected):
    assert expected in rejection(f"fox --seed {value}")


@pytest.mark.parametrize(
    ("names", "field", "low", "high", "default"),
    [
        (("--chaos", "--c"), "chaos", 0, 100, 0),
        (("--stylize", "--s"), "stylize", 0, 1000, 100),
        (("--weird", "--w"), "weird", 0, 3000, 0),
        (("--stop",), "stop", 10, 100, 100),
    ],
)
def test_whole_number_parameters_keep_their_range(names, field, low, high, default):
    assert getattr(parse_one("fox"), field) == default
    for name in names:
        assert getattr(parse_one(f"fox {name} {low}"), field) == low
        assert getattr(parse_one(f"fox {name} {high}"), field) == high
        assert rejection(f"fox {name} {high + 1}") == (
            f"{name} {high + 1} is out of range: use a whole number from {low} to {high}"
        )
    if low > 0:
        assert f"{names[0]} {low - 1} is out of range" in rejection(f"fox {names[0]} {low - 1}")


# --quality, --stylize → steps and guidance


@pytest.mark.parametrize(
    ("value", "quality", "steps"),
    [(".25", 0.25, 8), ("0.25", 0.25, 8), (".5", 0.5, 15), ("1", 1.0, 30), ("1.0", 1.0, 30), ("2", 2.0, 60)],
)
def test_quality_scales_the_preset_steps(value, quality, steps):
    spec = parse_one(f"fox --q {value}")
    assert (spec.quality, spec.steps) == (quality, steps)


def test_steps_never_drop_below_one():
    rules = rules_with({"6": ModelPreset(steps=1)}, "6")
    assert parse_one("fox --quality .25", rules=rules).steps == 1


@pytest.mark.parametrize("value", ["3", "0.3", "abc", ".", "1/2"])
def test_bad_qualities_list_the_allowed_ones(value):
    assert rejection(f"fox --q {value}") == f"--q {value} is not a quality: use one of .25, .5, 1 or 2"


@pytest.mark.parametrize(
    ("stylize", "guidance"), [(0, 7.5), (100, 7.25), (250, 6.875), (1000, 5.0), (333, 6.668)]
)
def test_stylize_lowers_guidance_across_the_preset_range(stylize, guidance):
    assert parse_one(f"fox --s {stylize}").guidance == guidance


# --style, --v, --niji


def test_style_raw_drops_the_style_suffix():
    spec = parse_one("fox --style RAW")
    assert (spec.raw, spec.style_suffix) == (True, "")
    assert parse_one("fox").style_suffix == RULES.presets["6"].style_suffix


def test_an_unknown_style_lists_raw():
    assert rejection("fox --style cute") == "--style cute is not a style: use raw (--style raw)"


@pytest.mark.parametrize(
    ("parameters", "preset"),
    [("--v 6", "6"), ("--version 6", "6"), ("--v 6.0", "6"), ("--niji", "niji 6"), ("--niji 6", "niji 6")],
)
def test_versions_select_presets(parameters, preset):
    spec = parse_one(f"fox {parameters}")
    assert spec.preset == preset
    assert spec.style_suffix == RULES.presets[preset].style_suffix


@pytest.mark.parametrize("parameters", ["--v 7", "--niji 5", "--version niji"])
def test_unknown_versions_list_the_available_ones(parameters):
    assert rejection(f"fox {parameters}") == f"{parameters} is not a version here: use one of --v 6, --niji 6"


def test_niji_without_a_number_picks_the_highest_and_presets_set_the_scheduler():
    presets = {
        "5.2": ModelPreset(scheduler="euler_a"),
        "6": ModelPreset(),
        "niji 5": ModelPreset(),
        "niji 10": ModelPreset(steps=20),
        "niji 6": ModelPreset(),
    }
    rules = rules_with(presets, "5.2")
    assert parse_one("fox", rules=rules).scheduler == "euler_a"
    assert parse_one("fox --niji", rules=rules).preset == "niji 10"
    assert parse_one("fox --niji 5.0", rules=rules).preset == "niji 5"
    assert parse_one("fox --v 5.2", rules=rules).preset == "5.2"
    assert parse_one("fox --v 6", rules=rules).scheduler == "dpmpp_2m_karras"


def test_niji_needs_a_niji_preset():
    assert "no niji version" in rejection("fox --niji", rules=rules_with({"6": ModelPreset()}, "6"))


def test_rules_refuse_presets_that_canonical_text_could_not_name():
    with pytest.raises(ValueError, match="default_preset"):
        rules_with({"6": ModelPreset()}, "7")
    with pytest.raises(ValueError, match="one word"):
        rules_with({"my style": ModelPreset()}, "my style")


# Flags


def test_tile_visibility_and_mode():
    assert parse_one("fox --tile").tile is True
    assert parse_one("fox --private").private is True
    assert parse_one("fox --stealth").private is True
    assert parse_one("fox --private --public").private is False
    assert parse_one("fox --public --stealth").private is True
    assert parse_one("fox --relax").mode == "relax"
    assert parse_one("fox --relax --fast").mode == "fast"


# --iw (image prompt weight)


@pytest.mark.parametrize(
    ("value", "weight"), [("0", 0.0), ("1", 1.0), ("1.5", 1.5), (".25", 0.25), ("3", 3.0)]
)
def test_image_weight_is_a_number_from_0_to_3(value, weight):
    assert parse_one(f"fox --iw {value}").image_weight == weight


def test_image_weight_defaults_to_1_and_the_parser_never_sets_an_image():
    spec = parse_one("fox")
    assert (spec.image_weight, spec.image_key) == (1.0, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3.5", "--iw 3.5 is out of range"),
        ("-1", "--iw -1 is not a number"),
        ("lots", "--iw lots is not a number"),
    ],
)
def test_bad_image_weights_name_the_range(value, expected):
    message = rejection(f"fox --iw {value}")
    assert message.startswith(expected) and "from 0 to 3" in message


def test_image_weight_is_in_the_canonical_text_only_when_not_1():
    assert "--iw" not in to_canonical(parse_one("fox --iw 1"))
    spec = parse_one("fox --iw 0.5")
    assert "--iw 0.5" in to_canonical(spec)
    assert parse_prompt(to_canonical(spec), RULES) == [spec]


# --no


def test_no_is_a_trimmed_comma_list_up_to_the_next_parameter():
    spec = parse_one("fox --no  text , ,blurry hands,  --tile")
    assert (spec.negative_prompt, spec.tile) == ("text, blurry hands", True)


def test_no_lists_add_up_without_duplicates():
    assert parse_one("fox --no text, cars --no trees, Text").negative_prompt == "text, cars, trees"


def test_no_with_only_commas_is_empty():
    assert parse_one("fox --no , ,").negative_prompt == ""


# --repeat and job counts


def test_repeat_is_kept_on_the_spec():
    spec = parse_one(f"fox --r {LIMITS.max_repeat}")
    assert spec.repeat == LIMITS.max_repeat
    assert parse_one("fox").repeat == 1


@pytest.mark.parametrize("value", ["0", "41"])
def test_repeat_outside_one_to_forty_is_out_of_range(value):
    assert rejection(f"fox --repeat {value}") == (
        f"--repeat {value} is out of range: use a whole number from 1 to 40"
    )


def test_repeat_above_the_server_cap_names_the_cap():
    message = rejection(f"fox --repeat {LIMITS.max_repeat + 1}")
    assert message == (
        f"--repeat {LIMITS.max_repeat + 1} is more than this server allows: "
        f"use a --repeat from 1 to {LIMITS.max_repeat}"
    )


def test_permutations_times_repeat_must_fit_the_job_limit():
    rules = rules_with({"6": ModelPreset()}, "6", max_repeat=4, max_jobs_per_prompt=7)
    assert len(parse_prompt("fox {red, blue} --r 3", rules)) == 2
    message = rejection("fox {red, blue} --r 4", rules=rules)
    assert "8 jobs" in message
    assert "at most 7" in message


# Multi-prompts


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a::2 b::-0.5", [("a", 2.0), ("b", -0.5)]),
        ("hot:: dog", [("hot", 1.0), ("dog", 1.0)]),
        ("hot dog::1.5", [("hot dog", 1.5)]),
        ("space ship::.5 stars", [("space ship", 0.5), ("stars", 1.0)]),
        ("a::2b", [("a", 1.0), ("2b", 1.0)]),
        ("a::+3 b::2.", [("a", 3.0), ("b", 2.0)]),
        ("a::0 b", [("a", 0.0), ("b", 1.0)]),
        ("a: ::2 b", [("a:", 2.0), ("b", 1.0)]),
        ("a:::b", [("a", 1.0), (":b", 1.0)]),
        ("(fox:1.2) :: snow", [("(fox:1.2)", 1.0), ("snow", 1.0)]),
    ],
)
def test_multi_prompts_split_on_double_colons(text, parts):
    assert [(part.text, part.weight) for part in parse_one(text).prompt] == parts


def test_an_empty_part_names_its_separator():
    assert rejection("::2 dog") == "there is no text before ::2: write text::2, e.g. dog::2"
    assert "before ::" in rejection("dog:: ::3")


def test_the_weights_must_add_up_to_more_than_zero():
    assert "add up to 0" in rejection("a::1 b::-1")
    assert "add up to -1.5" in rejection("a::-1 b::-0.5")


def test_a_huge_weight_is_rejected():
    assert "too large" in rejection("a::" + "9" * 400)


def test_a_parameter_glued_to_a_separator_is_rejected():
    assert rejection("fox::--ar 2:1") == "--ar is glued to the '::' before it: put a space between them"


# Emphasis


def test_emphasis_is_kept_verbatim():
    assert parse_one("a (red:1.3) fox").prompt[0].text == "a (red:1.3) fox"


@pytest.mark.parametrize("emphasis", ["(red:3.5)", "(red:-1)", "(red : 9)"])
def test_emphasis_out_of_range_is_named(emphasis):
    message = rejection(f"a {emphasis} fox")
    assert emphasis in message
    assert "from 0 to 3" in message


def test_emphasis_in_the_negative_prompt_is_checked_too():
    assert "(text:4)" in rejection("fox --no (text:4)")


# Saved defaults


def test_prompt_parameters_override_saved_defaults():
    defaults = "--q 2 --s 250 --ar 16:9 --private --relax --no text, watermark"
    spec = parse_one("fox --ar 1:1 --public --no Watermark, snow", defaults)
    assert (spec.quality, spec.stylize, spec.aspect, spec.private, spec.mode) == (
        2.0,
        250,
        "1:1",
        False,
        "relax",
    )
    assert spec.negative_prompt == "text, watermark, snow"


def test_defaults_use_the_same_spelling_rules():
    spec = parse_one("fox", "—ar 2:1\t--no a\\, b --stealth")
    assert (spec.aspect, spec.negative_prompt, spec.private) == ("2:1", "a, b", True)


@pytest.mark.parametrize(
    ("defaults", "named"),
    [
        ("--ar 9:1", "--ar 9:1 is too wide"),
        ("photo --ar 2:1", "'photo' is not a parameter"),
        ("--ar {1:1, 2:1}", "permutations can't be saved"),
        ("--tile\x07", "U+0007"),
    ],
)
def test_broken_defaults_say_so(defaults, named):
    message = rejection("fox", defaults)
    assert message.startswith("your saved defaults don't work:")
    assert named in message


def test_from_settings_copies_presets_and_limits():
    settings = Settings()
    rules = PromptRules.from_settings(settings)
    assert dict(rules.presets) == settings.presets
    assert (rules.default_preset, rules.limits) == (settings.default_preset, settings.limits)
