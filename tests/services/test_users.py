"""Saved preferences without Discord: /settings defaults, /prefer options and suffix, and how a
prompt is expanded with them before parsing (real Postgres for the stored parts)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from sojourn.errors import UserError
from sojourn.prompt import PromptError, PromptRules
from sojourn.services import users
from sojourn.services.submission import submit_prompt
from sojourn.services.users import UserDefaults, expand_prompt
from sojourn.settings import Settings

RULES = PromptRules.from_settings(Settings())
pytestmark = pytest.mark.usefixtures("pinned_clock")
_user_ids = itertools.count(50_000)


class Collecting:
    """A queue that keeps what it is given (this module needs no broker)."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        self.sent.append(job_id)


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path_factory.mktemp("data"))


# --- expansion (pure) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat --mine", "a cat --ar 16:9 --s 250"),
        ("a cat —mine --q 2", "a cat --ar 16:9 --s 250 --q 2"),  # the phone's em dash
        ("a cat --MINE", "a cat --ar 16:9 --s 250"),
        ("a cat --mine2", "a cat --mine2"),  # not a saved name: left for the parser to report
        ("a cat --minecraft", "a cat --minecraft"),  # whole words only
        ("self--mine", "self--mine"),
        ("a cat --ar 2:3", "a cat --ar 2:3"),
    ],
)
def test_options_expand_whole_words_once(text: str, expected: str) -> None:
    assert expand_prompt(text, {"mine": "--ar 16:9 --s 250"}) == expected


def test_the_suffix_is_appended_then_expanded() -> None:
    assert expand_prompt("a cat --q 2", {"clean": "--no text"}, "--clean --seed 1") == (
        "a cat --q 2 --no text --seed 1"
    )
    assert expand_prompt("a cat", {}, "   ") == "a cat"


def test_an_option_cannot_shadow_a_parameter_even_if_stored() -> None:
    assert expand_prompt("a cat --ar 1:1", {"ar": "--ar 16:9"}) == "a cat --ar 1:1"


def test_an_expansion_is_not_expanded_again() -> None:
    assert expand_prompt("x --a", {"a": "--b", "b": "--q 2"}) == "x --b"


def test_defaults_become_only_the_parameters_that_differ() -> None:
    assert UserDefaults().as_parameters() == ""
    defaults = UserDefaults(quality=0.5, stylize=750, private=True, mode="relax", remix=True, aspect="2:3")
    assert defaults.as_parameters() == "--ar 2:3 --q 0.5 --s 750 --private --relax"
    assert defaults.to_stored()["parameters"] == defaults.as_parameters()


def test_stored_defaults_are_read_tolerantly() -> None:
    stored = {"quality": 3, "stylize": 250, "aspect": "16:9", "mode": "turbo", "parameters": "--q 3"}
    assert UserDefaults.from_stored(stored) == UserDefaults(stylize=250, aspect="16:9")
    assert UserDefaults.from_stored(None) == UserDefaults()


# --- storing (Postgres) ------------------------------------------------------------------------------


async def test_options_are_validated_limited_and_replaceable(sessions) -> None:  # type: ignore[no-untyped-def]
    user_id = next(_user_ids)
    assert await users.set_option(sessions, RULES, user_id, "—Mine", "--ar 16:9   --s 250") == "mine"
    with pytest.raises(UserError, match="--seed is already a parameter"):
        await users.set_option(sessions, RULES, user_id, "seed", "--seed 1")
    with pytest.raises(UserError, match=r"--x doesn't work: '\{a, b\}'|permutations can't be saved"):
        await users.set_option(sessions, RULES, user_id, "x", "--ar {1:1, 2:3}")
    with pytest.raises(UserError, match="--y needs a value"):
        await users.set_option(sessions, RULES, user_id, "y", "   ")
    for number in range(19):
        await users.set_option(sessions, RULES, user_id, f"o{number}", "--q 2")
    with pytest.raises(UserError, match="you have 20 options"):
        await users.set_option(sessions, RULES, user_id, "extra", "--q 2")
    await users.set_option(sessions, RULES, user_id, "mine", "--ar 1:1")  # replacing is fine
    async with sessions() as session:
        preferences = await users.load_preferences(session, user_id)
    assert len(preferences.options) == 20 and preferences.options["mine"] == "--ar 1:1"
    await users.delete_option(sessions, user_id, "--mine")
    with pytest.raises(UserError, match="you have no option --mine"):
        await users.delete_option(sessions, user_id, "mine")


async def test_the_suffix_may_use_options_and_is_checked_with_them(sessions) -> None:  # type: ignore[no-untyped-def]
    user_id = next(_user_ids)
    with pytest.raises(UserError, match="the suffix doesn't work: unknown parameter --clean"):
        await users.set_suffix(sessions, RULES, user_id, "--clean")
    await users.set_option(sessions, RULES, user_id, "clean", "--no text")
    assert await users.set_suffix(sessions, RULES, user_id, "  --clean  --s 50 ") == "--clean --s 50"
    with pytest.raises(UserError, match="is 501 characters long"):
        await users.set_suffix(sessions, RULES, user_id, "-" * 501)
    assert await users.set_suffix(sessions, RULES, user_id, "") == ""


async def test_submission_applies_options_suffix_and_defaults(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    user_id = next(_user_ids)
    await users.update_defaults(sessions, user_id, quality=2.0, mode="relax")
    await users.set_option(sessions, RULES, user_id, "wide", "--ar 16:9")
    await users.set_suffix(sessions, RULES, user_id, "--no blur --seed 9")
    queue = Collecting()

    (job,) = await submit_prompt(sessions, settings, queue, user_id=user_id, text="a fox --wide")

    assert (job.spec["width"], job.spec["height"], job.spec["quality"]) == (1344, 768, 2.0)
    assert (job.spec["mode"], job.spec["negative_prompt"], job.spec["seed"]) == ("relax", "blur", 9)
    assert queue.sent == [job.id]
    with pytest.raises(PromptError, match="unknown parameter --tall"):
        await submit_prompt(sessions, settings, queue, user_id=user_id, text="a fox --tall")


async def test_an_unknown_setting_value_is_refused(sessions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="not one of the choices"):
        await users.update_defaults(sessions, next(_user_ids), quality=3.0)
    assert await users.reset_defaults(sessions, next(_user_ids)) == UserDefaults()
