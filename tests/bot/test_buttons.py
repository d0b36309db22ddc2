"""Every button on a result, end to end: simcord, Postgres, Redis and a real worker on tiny models."""

from __future__ import annotations

import uuid

import discord
import pytest
from sqlalchemy import delete, select

from db.models import Image, Job, JobKind, JobStatus, LedgerEntry, LedgerKind
from sojourn.spec import JobSpec
from tests.bot.conftest import World, balance_of, jobs_of, restart_bot
from tests.bot.helpers import attachment_image, button_rows, ledger_kinds, wait_for_result

pytestmark = pytest.mark.usefixtures("worker")

GALLERY = "https://gallery.example"


async def imagine(world: World, sessions, prompt: str) -> tuple[Job, discord.Message]:  # type: ignore[no-untyped-def]
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    assert result.response is not None and result.response.content.startswith("Queued 1 job")
    job = (await jobs_of(sessions, world.alice.id))[-1]
    return job, await wait_for_result(world, job.id)


async def child_of(sessions, parent: Job, kind: JobKind | None = None) -> Job:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        query = select(Job).where(Job.parent_job_id == parent.id).order_by(Job.queued_at.desc())
        if kind is not None:
            query = query.where(Job.kind == kind)
        job = (await session.execute(query)).scalars().first()
    assert job is not None, f"no {kind} job was made from {parent.id}"
    return job


def headline(job: Job, label: str, member: object) -> str:
    return f"**{discord.utils.escape_markdown(job.prompt)}** - {label} {member.mention}"  # type: ignore[attr-defined]


def single_image_buttons(job_id: uuid.UUID, favorites: str = "❤️") -> list[list[tuple[str, str]]]:
    hex_id = job_id.hex
    return [
        [
            ("Vary (Strong)", f"sj:vs:{hex_id}:1"),
            ("Vary (Subtle)", f"sj:vt:{hex_id}:1"),
            ("Upscale (2×)", f"sj:up:{hex_id}:1"),
        ],
        [("Zoom Out 2×", f"sj:z2:{hex_id}:1"), ("Zoom Out 1.5×", f"sj:z15:{hex_id}:1")],
        [(favorites, f"sj:fav:{hex_id}:1"), ("Web", f"{GALLERY}/jobs/{job_id}")],
    ]


async def test_u_posts_a_2x_image_whose_own_buttons_all_work(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    grid_job, grid = await imagine(world, bot_sessions, "a red fox --q .25 --seed 5")

    click = await world.alice.click(grid, label="U2")

    assert click.ephemeral and click.response is not None
    upscale = await child_of(bot_sessions, grid_job, JobKind.UPSCALE)
    assert click.response.content.startswith(f"Upscale of image 2: queued `{upscale.id}`")
    assert (upscale.parent_job_id, upscale.parent_image_index) == (grid_job.id, 2)
    message = await wait_for_result(world, upscale.id)
    assert message.content == headline(upscale, "Image #2", world.alice)
    # Random-weight noise does not compress: past the guild's upload limit it goes as a JPEG.
    assert message.attachments[0].filename in ("image.png", "image.jpg")
    assert (await attachment_image(message)).size == (2048, 2048)  # 2× the stored full-size image
    assert button_rows(message) == single_image_buttons(upscale.id)

    # Each button on the upscaled image makes a new 2×2 grid at the job's resolution.
    for label, kind, action in (
        ("Vary (Strong)", JobKind.VARIATION, "vary_strong"),
        ("Vary (Subtle)", JobKind.VARIATION, "vary_subtle"),
        ("Zoom Out 2×", JobKind.ZOOM, "zoom_out"),
        ("Zoom Out 1.5×", JobKind.ZOOM, "zoom_out"),
    ):
        pressed = await world.alice.click(message, label=label)
        assert pressed.response is not None and pressed.response.content.startswith(f"{label}: queued")
        made = await child_of(bot_sessions, upscale, kind)
        spec = JobSpec.model_validate(made.spec)
        assert spec.action == action and (made.parent_job_id, made.parent_image_index) == (upscale.id, 1)
        result = await wait_for_result(world, made.id)
        assert (await attachment_image(result)).size == (1024, 1024), label
        assert [len(row) for row in button_rows(result)] == [4, 4, 1], label
        by = {"vary_strong": "Variations (Strong) by", "vary_subtle": "Variations (Subtle) by"}
        assert result.content == headline(made, by.get(action, f"Zoom Out {spec.zoom:g}× by"), world.alice)

    # /show prints the whole lineage, newest first: the zoom, from the upscale, from the grid.
    shown = await world.alice.slash(world.channel, "show", job_id=str(made.id))
    assert shown.response is not None
    assert shown.response.content.endswith(
        f"\n-# made from image 1 of `{upscale.id}`, made from image 2 of `{grid_job.id}`"
    )

    # Upscale (2×) again would pass the configured limit: a clear answer, nothing charged.
    balance = await balance_of(bot_sessions, world.alice.id)
    again = await world.alice.click(message, label="Upscale (2×)")
    assert again.ephemeral and again.response is not None
    assert again.response.content == (
        "This image is 2048×2048; 2× would be 4096×4096, and the largest upscale is 2048 px on the "
        "long side. Use this one as it is."
    )
    assert await balance_of(bot_sessions, world.alice.id) == balance


async def test_favorite_toggles_and_counts_on_the_message(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    grid_job, grid = await imagine(world, bot_sessions, "a quiet pond --q .25 --seed 6")
    await world.alice.click(grid, label="U1")
    upscale = await child_of(bot_sessions, grid_job, JobKind.UPSCALE)
    message = await wait_for_result(world, upscale.id)

    liked = await world.bob.click(message, custom_id=f"sj:fav:{upscale.id.hex}:1")  # anyone may ❤
    assert [f.content for f in liked.followups] == ["Added to your favorites ❤️ (1 in all)."]
    liked_too = await world.alice.click(message, custom_id=f"sj:fav:{upscale.id.hex}:1")
    assert [f.content for f in liked_too.followups] == ["Added to your favorites ❤️ (2 in all)."]
    refreshed = next(m for m in world.channel.history() if m.id == message.id)
    assert button_rows(refreshed) == single_image_buttons(upscale.id, favorites="2")

    unliked = await world.bob.click(message, custom_id=f"sj:fav:{upscale.id.hex}:1")
    assert [f.content for f in unliked.followups] == ["Removed from your favorites (1 in all)."]

    # /show re-posts it with its lineage and live buttons, the count included.
    shown = await world.alice.slash(world.channel, "show", job_id=str(upscale.id))
    assert shown.response is not None
    assert shown.response.content.endswith(f"\n-# made from image 1 of `{grid_job.id}`")
    assert button_rows(shown.response.message) == single_image_buttons(upscale.id, favorites="1")


async def test_v_and_reroll_make_new_grids_and_record_their_lineage(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    grid_job, grid = await imagine(world, bot_sessions, "a paper boat --q .25 --seed 21")

    v3 = await world.alice.click(grid, label="V3")
    assert v3.response is not None and v3.response.content.startswith("Vary (Strong) of image 3: queued")
    variation = await child_of(bot_sessions, grid_job, JobKind.VARIATION)
    reroll_click = await world.alice.click(grid, custom_id=f"sj:r:{grid_job.id.hex}")
    assert reroll_click.response is not None and reroll_click.response.content.startswith("Re-roll: queued")
    reroll = await child_of(bot_sessions, grid_job, JobKind.REROLL)

    varied = await wait_for_result(world, variation.id)
    rerolled = await wait_for_result(world, reroll.id)

    assert (variation.parent_job_id, variation.parent_image_index) == (grid_job.id, 3)
    assert (reroll.parent_job_id, reroll.parent_image_index) == (grid_job.id, None)
    assert (await attachment_image(varied)).size == (1024, 1024)
    assert (await attachment_image(rerolled)).size == (1024, 1024)
    assert varied.content == headline(variation, "Variations (Strong) by", world.alice)
    new_seed = JobSpec.model_validate(reroll.spec).seed
    assert new_seed != 21 and reroll.prompt == grid_job.prompt.replace("--seed 21", f"--seed {new_seed}")
    assert rerolled.content == f"**{discord.utils.escape_markdown(reroll.prompt)}** - {world.alice.mention}"
    assert [len(row) for row in button_rows(rerolled)] == [4, 4, 1]


async def test_a_double_press_queues_and_charges_once(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    _, grid = await imagine(world, bot_sessions, "a brass key --q .25 --seed 8")
    balance = await balance_of(bot_sessions, world.alice.id)

    # One after another here: simcord runs one click at a time. Two presses arriving at the same
    # moment race in the database, and tests/services/test_buttons.py fires five at once there.
    first = await world.alice.click(grid, label="U1")
    second = await world.alice.click(grid, label="U1")
    third = await world.alice.click(grid, label="U1")

    upscales = [j for j in await jobs_of(bot_sessions, world.alice.id) if j.kind == JobKind.UPSCALE]
    assert len(upscales) == 1
    answers = sorted(r.response.content for r in (first, second, third) if r.response is not None)
    assert sum(a.startswith("Upscale of image 1: queued") for a in answers) == 1
    repeats = [a for a in answers if a.startswith("You already asked for Upscale of image 1")]
    assert len(repeats) == 2 and all("Nothing was charged again." in a for a in repeats)
    assert await balance_of(bot_sessions, world.alice.id) == balance - upscales[0].cost
    assert await ledger_kinds(bot_sessions, upscales[0].id) in (
        [LedgerKind.HOLD],
        [LedgerKind.HOLD, LedgerKind.SETTLE],
    )


async def test_stale_and_foreign_presses_are_refused_and_change_nothing(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    # discord.py (like Discord) drops a custom_id that is not on the clicked message, so what
    # reaches the bot is a real button whose job is gone or not the presser's; forged shapes
    # (bad index, wrong action for the result) are refused by the service (tests/services).
    private_job, private = await imagine(world, bot_sessions, "a secret map --q .25 --private --seed 9")
    gone_job, gone = await imagine(world, bot_sessions, "a sandcastle --q .25 --seed 19")
    async with bot_sessions.begin() as session:  # e.g. purged by an admin
        for table in (LedgerEntry, Image):
            await session.execute(delete(table).where(table.job_id == gone_job.id))
        await session.execute(delete(Job).where(Job.id == gone_job.id))

    stale = await world.alice.click(gone, label="V1")
    foreign = await world.bob.click(private, label="U1")  # someone else's private job

    for refused in (stale, foreign):
        assert refused.ephemeral and refused.response is not None
        assert refused.response.content == (
            "That result no longer exists, so its buttons do nothing. Use /imagine again."
        )
    assert [j.id for j in await jobs_of(bot_sessions, world.alice.id)] == [private_job.id]
    assert await jobs_of(bot_sessions, world.bob.id) == []
    assert await balance_of(bot_sessions, world.bob.id) == 0


async def test_a_press_that_names_no_image_is_refused_in_words_and_changes_nothing(  # type: ignore[no-untyped-def]
    world: World, bot_sessions
) -> None:
    grid_job, _ = await imagine(world, bot_sessions, "a tin robot --q .25 --seed 15")
    balance = await balance_of(bot_sessions, world.alice.id)
    # A U button without its image, on a message of the bot's (an old version's, or a forgery's):
    # its custom_id has a valid shape, so it reaches the bot, which must say what is wrong.
    forged_id = f"sj:u:{grid_job.id.hex}"
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="U", custom_id=forged_id))
    channel = world.env.bot.get_partial_messageable(world.channel.id, guild_id=world.guild.id)
    forged = await channel.send("an old result", view=view)

    pressed = await world.alice.click(forged, custom_id=forged_id)

    assert pressed.ephemeral and pressed.response is not None
    assert pressed.response.content == (
        "That Upscale button does not say which image it is for, so it does nothing. "
        "Use the buttons on a result message posted by the bot."
    )
    assert [job.id for job in await jobs_of(bot_sessions, world.alice.id)] == [grid_job.id]
    assert await balance_of(bot_sessions, world.alice.id) == balance


async def test_a_server_admin_lets_anyone_press_and_the_presser_pays(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    admins = world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[admins])
    grid_job, grid = await imagine(world, bot_sessions, "a shared canvas --q .25 --seed 10")
    refused = await world.bob.click(grid, label="U3")
    assert refused.response is not None
    assert refused.response.content.startswith(f"Only {world.alice.mention} can use the buttons")

    opened = await carol.slash(world.channel, "server buttons", who="anyone")
    assert opened.ephemeral and opened.response is not None
    assert opened.response.content.startswith("Anyone here may now press the buttons")
    pressed = await world.bob.click(grid, label="U3")

    assert pressed.response is not None and pressed.response.content.startswith("Upscale of image 3: queued")
    (made,) = await jobs_of(bot_sessions, world.bob.id)
    assert made.parent_job_id == grid_job.id and made.cost == 2
    assert await balance_of(bot_sessions, world.bob.id) == 40 - made.cost  # the presser paid


async def test_remix_mode_opens_the_prompt_and_the_variation_follows_the_edit(
    world: World, bot_sessions
) -> None:  # type: ignore[no-untyped-def]
    grid_job, grid = await imagine(world, bot_sessions, "a red fox --q .25 --seed 12")
    panel = await world.alice.slash(world.channel, "settings")
    assert panel.response is not None
    await world.alice.click(panel.response.message, label="Remix off")

    shown = await world.alice.click(grid, label="V2")

    assert shown.modal is not None and shown.modal["custom_id"] == f"sj:m:v:{grid_job.id.hex}:2"
    assert len(await jobs_of(bot_sessions, world.alice.id)) == 1  # nothing queued before the edit
    edited = grid_job.prompt.replace("a red fox", "a blue fox")
    submitted = await world.alice.submit_modal(shown, {"prompt": edited})

    assert submitted.response is not None
    assert submitted.response.content.startswith("Vary (Strong) of image 2: queued")
    variation = await child_of(bot_sessions, grid_job, JobKind.VARIATION)
    spec = JobSpec.model_validate(variation.spec)
    assert spec.prompt[0].text == "a blue fox" and spec.action == "vary_strong"
    assert spec.source is not None and spec.source.index == 2
    result = await wait_for_result(world, variation.id)
    assert result.content.startswith("**a blue fox")
    bad = await world.alice.click(grid, label="V2")
    broken = await world.alice.submit_modal(bad, {"prompt": "a blue fox --ar 9:1"})
    assert broken.response is not None
    assert broken.response.content == "--ar 9:1 is too wide: use a ratio between 1:4 and 4:1"
    assert (await child_of(bot_sessions, grid_job, JobKind.VARIATION)).id == variation.id
    assert variation.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED)


async def test_a_remix_modal_submitted_after_a_bot_restart_still_works(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, bot_settings, queue
) -> None:
    grid_job, grid = await imagine(world, bot_sessions, "a paper crane --q .25 --seed 14")
    panel = await world.alice.slash(world.channel, "settings")
    assert panel.response is not None
    await world.alice.click(panel.response.message, label="Remix off")
    shown = await world.alice.click(grid, custom_id=f"sj:r:{grid_job.id.hex}")
    assert shown.modal is not None

    await restart_bot(world.env, bot_settings, queue)  # the modal is open in Alice's client meanwhile
    submitted = await world.alice.submit_modal(shown, {"prompt": "a golden crane --q .25"})

    assert submitted.response is not None and submitted.response.content.startswith("Re-roll: queued")
    reroll = await child_of(bot_sessions, grid_job, JobKind.REROLL)
    assert reroll.prompt.startswith("a golden crane")
