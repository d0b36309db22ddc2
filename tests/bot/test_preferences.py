"""/settings and /prefer on the simulated Discord: saved in the database, applied to the next /imagine."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from sojourn.settings import Settings
from tests.bot.conftest import GatedQueue, World, jobs_of, restart_bot


async def stored_user(sessions: async_sessionmaker[AsyncSession], user_id: int) -> User:
    async with sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


def field_values(message: object) -> dict[str, str]:
    (embed,) = message.embeds  # type: ignore[attr-defined]
    return {field.name: field.value for field in embed.fields}


async def test_settings_panel_saves_defaults_that_the_next_imagine_uses(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, bot_settings: Settings, queue: GatedQueue
) -> None:
    alice = world.alice
    panel = await alice.slash(world.channel, "settings")
    assert panel.ephemeral and panel.response is not None
    custom_ids = [child["custom_id"] for row in panel.response.components for child in row["components"]]
    assert custom_ids == [
        "sj:set:quality", "sj:set:stylize", "sj:set:aspect",
        "sj:set:private", "sj:set:mode", "sj:set:remix", "sj:set:reset",
    ]  # fmt: skip

    await alice.select(panel.response, ["2"], custom_id="sj:set:quality")
    await alice.select(panel.response, ["16:9"], custom_id="sj:set:aspect")
    await alice.click(panel.response, label="Fast mode")  # → relax
    updated = await alice.click(panel.response, label="Public")  # → private
    assert updated.response is not None
    assert field_values(updated.response) == {
        "Quality": "2", "Stylize": "100", "Aspect ratio": "16:9",
        "Visibility": "private", "Mode": "relax", "Remix": "off",
    }  # fmt: skip
    user = await stored_user(bot_sessions, alice.id)
    assert user.defaults["parameters"] == "--ar 16:9 --q 2 --private --relax"

    # The panel's controls are DynamicItems: they keep working after a restart.
    await restart_bot(world.env, bot_settings, queue)
    await alice.select(panel.response, ["250"], custom_id="sj:set:stylize")
    await alice.click(panel.response, label="Remix off")
    user = await stored_user(bot_sessions, alice.id)
    assert user.defaults["stylize"] == 250 and user.defaults["remix"] is True

    await alice.slash(world.channel, "imagine", prompt="a quiet harbour")
    await alice.slash(world.channel, "imagine", prompt="a quiet harbour --ar 1:1 --fast")
    with_defaults, overridden = await jobs_of(bot_sessions, alice.id)
    spec = with_defaults.spec
    assert (spec["quality"], spec["stylize"], spec["width"], spec["height"]) == (2.0, 250, 1344, 768)
    assert (spec["private"], spec["mode"]) == (True, "relax")
    assert "--ar 16:9" in with_defaults.prompt and "--relax" in with_defaults.prompt
    assert (overridden.spec["width"], overridden.spec["mode"]) == (1024, "fast")  # the prompt wins

    info = await alice.slash(world.channel, "info")
    assert info.response is not None
    fields = field_values(info.response)
    assert fields["Mode"] == "relax · remix on"
    assert fields["Defaults (/settings)"] == "`--ar 16:9 --q 2 --s 250 --private --relax`"

    await alice.click(panel.response, label="Reset all")
    user = await stored_user(bot_sessions, alice.id)
    assert user.defaults["parameters"] == ""


async def test_prefer_options_expand_and_the_suffix_is_appended(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    alice = world.alice
    saved = await alice.slash(world.channel, "prefer option set", name="wide", value="--ar 16:9  --s 250")
    assert saved.ephemeral and saved.response is not None
    assert saved.response.content == "Saved: `--wide` now means `--ar 16:9 --s 250` in your prompts."
    await alice.slash(world.channel, "prefer option set", name="--Clean", value="--no text, watermark")
    suffix = await alice.slash(world.channel, "prefer suffix", text="--clean --seed 42")
    assert suffix.response is not None
    assert suffix.response.content == "Every prompt now ends with `--clean --seed 42`."

    listed = await alice.slash(world.channel, "prefer option list")
    assert listed.response is not None
    assert listed.response.content == (
        "Your shortcuts (2 of 20):\n`--clean` → `--no text, watermark`\n`--wide` → `--ar 16:9 --s 250`\n"
        "Suffix on every prompt: `--clean --seed 42`"
    )
    choices = await alice.autocomplete(world.channel, "prefer option delete", "name", "wi")
    assert [c["value"] for c in choices] == ["wide"]

    await alice.slash(world.channel, "imagine", prompt="a lighthouse —wide")
    (job,) = await jobs_of(bot_sessions, alice.id)
    assert (job.spec["width"], job.spec["stylize"], job.spec["seed"]) == (1344, 250, 42)
    assert job.spec["negative_prompt"] == "text, watermark"

    unknown = await alice.slash(world.channel, "imagine", prompt="a lighthouse --nope")
    assert unknown.response is not None
    assert unknown.response.content.startswith("unknown parameter --nope")

    await alice.slash(world.channel, "prefer suffix")
    cleared = await stored_user(bot_sessions, alice.id)
    assert cleared.prefer_suffix == "" and set(cleared.prefer_options) == {"wide", "clean"}
    await alice.slash(world.channel, "prefer option delete", name="wide")
    assert set((await stored_user(bot_sessions, alice.id)).prefer_options) == {"clean"}


async def test_prefer_refuses_what_it_could_not_expand(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    alice = world.alice

    async def answer(command: str, **options: str) -> str:
        result = await alice.slash(world.channel, command, **options)
        assert result.ephemeral and result.response is not None
        return result.response.content

    assert await answer("prefer option set", name="ar", value="--ar 2:3") == (
        "--ar is already a parameter of its own: pick another name, e.g. myar"
    )
    assert await answer("prefer option set", name="bad name!", value="--q 2") == (
        "'bad name!' can't be an option name: use 1 to 32 letters, digits, - or _ "
        "(starting with a letter or digit), e.g. mystyle"
    )
    assert await answer("prefer option set", name="words", value="oil painting") == (
        "--words doesn't work: 'oil painting' is not a parameter: shortcuts hold only parameters"
    )
    assert (await answer("prefer option set", name="huge", value="--ar 9:1")).startswith(
        "--huge doesn't work: --ar 9:1 is too wide"
    )
    assert (await answer("prefer suffix", text="--unknown")).startswith(
        "the suffix doesn't work: unknown parameter --unknown"
    )
    for number in range(20):
        await alice.slash(world.channel, "prefer option set", name=f"style{number}", value=f"--s {number}")
    assert await answer("prefer option set", name="onemore", value="--s 5") == (
        "you have 20 options, the most there can be: delete one with /prefer option delete, or reuse a name"
    )
    assert (await answer("prefer option set", name="style3", value="--s 7")).startswith("Saved")  # a reuse
    assert (await stored_user(bot_sessions, alice.id)).prefer_options["style3"] == "--s 7"
