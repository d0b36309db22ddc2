"""/gallery (public results one at a time, paged by buttons that outlive the bot), its ❤ and Show,
/server gallery and the showcase channel, and `origin_of`'s channel_public.

The results are built in the database as completion leaves them, their images in the bot's
storage; everything else (simcord, Postgres, the bot, the gallery services) is real.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import discord
import simcord
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import SojournBot
from db.models import Favorite, Image, Job, JobKind, JobStatus, ShowcasePost
from sojourn.clock import utcnow
from sojourn.services import credits
from sojourn.services.like_counts import recount_likes
from sojourn.settings import Settings
from sojourn.storage import grid_key, image_key
from tests.bot.conftest import GatedQueue, World, eventually, jobs_of, restart_bot
from tests.bot.helpers import png_bytes, result_message

SIDE = 64


async def finished(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    *,
    user: simcord.MemberActor,
    prompt: str,
    age: dt.timedelta = dt.timedelta(0),
    private: bool = False,
    upscale: bool = False,
    message_id: int | None = None,
) -> uuid.UUID:
    """A succeeded result made in #art (public), `age` ago, its images in the bot's storage."""
    bot = world.env.bot
    assert isinstance(bot, SojournBot)
    job_id = uuid.uuid4()
    done = utcnow() - dt.timedelta(minutes=1) - age
    indexes = [1] if upscale else [0, 1, 2, 3, 4]
    async with sessions.begin() as session:
        await credits.ensure_user(session, user.id)
        session.add(
            Job(
                id=job_id,
                user_id=user.id,
                kind=JobKind.UPSCALE if upscale else JobKind.IMAGINE,
                prompt=f"{prompt} --ar 1:1 --seed 7",
                spec={"private": private, "images": 1 if upscale else 4},
                status=JobStatus.SUCCEEDED,
                cost=2,
                queued_at=done - dt.timedelta(seconds=30),
                finished_at=done,
                guild_id=world.guild.id,
                channel_id=world.channel.id,
                message_id=message_id,
                channel_public=True,
                private=private,
            )
        )
        await session.flush()
        for index in indexes:
            key = grid_key(job_id) if index == 0 else image_key(job_id, index)
            bot.storage.put(key, png_bytes(SIDE, SIDE, (40 * index, 90, 200)))
            session.add(
                Image(
                    job_id=job_id,
                    index=index,
                    seed=7 + index,
                    width=SIDE,
                    height=SIDE,
                    storage_key=key,
                    public=not private,
                    created_at=done,
                )
            )
    return job_id


def answer(result: simcord.InteractionResult) -> simcord.ResponseMessage:
    assert result.ephemeral and result.response is not None
    return result.response


def shown_job(message: simcord.ResponseMessage) -> uuid.UUID:
    (embed,) = message.embeds
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Job"] is not None
    return uuid.UUID(fields["Job"].strip("`"))


def field(message: simcord.ResponseMessage, name: str) -> str | None:
    return {item.name: item.value for item in message.embeds[0].fields}[name]


def button(message: simcord.ResponseMessage, emoji_or_label: str) -> dict[str, Any]:
    """A button of the message, as Discord holds it, by its label or emoji."""
    for row in message.components:
        for child in row["components"]:
            if child.get("label") == emoji_or_label or child.get("emoji", {}).get("name") == emoji_or_label:
                return dict(child)
    raise AssertionError(f"no {emoji_or_label} button in {message.components!r}")


def disabled(message: simcord.ResponseMessage, emoji: str) -> bool:
    return bool(button(message, emoji).get("disabled"))


async def press(actor: simcord.MemberActor, result: simcord.InteractionResult, emoji: str) -> None:
    await actor.click(answer(result), custom_id=button(answer(result), emoji)["custom_id"])


async def browse(actor: simcord.MemberActor, result: simcord.InteractionResult) -> list[uuid.UUID]:
    """Every job the gallery shows, pressing ▶ until it is disabled."""
    seen = [shown_job(answer(result))]
    while not disabled(answer(result), "▶️"):
        await press(actor, result, "▶️")
        seen.append(shown_job(answer(result)))
    return seen


async def test_the_gallery_shows_public_results_only_and_pages_after_a_restart(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    alice, bob = world.alice, world.bob
    newest = await finished(world, bot_sessions, user=alice, prompt="a red lighthouse")
    middle = await finished(
        world, bot_sessions, user=bob, prompt="a blue lighthouse", age=dt.timedelta(hours=1)
    )
    oldest = await finished(world, bot_sessions, user=alice, prompt="a green fox", age=dt.timedelta(days=2))
    await finished(world, bot_sessions, user=alice, prompt="a secret lighthouse", private=True)

    opened = await bob.slash(world.channel, "gallery")
    first = answer(opened)
    assert shown_job(first) == newest
    assert first.embeds[0].description == "a red lighthouse --ar 1:1 --seed 7"
    assert field(first, "By") == alice.mention and field(first, "❤") == "0"
    assert first.embeds[0].image.url is not None and first.attachments[0].filename == "grid.png"
    assert disabled(first, "◀️") and not disabled(first, "▶️")
    assert button(first, "Web")["url"] == f"https://gallery.example/jobs/{newest}"

    await press(bob, opened, "▶️")
    assert shown_job(answer(opened)) == middle
    # A new bot process answers the old message's buttons: they carry the filters and the place.
    await restart_bot(world.env, bot_settings, queue)
    await press(bob, opened, "▶️")
    assert shown_job(answer(opened)) == oldest and disabled(answer(opened), "▶️")
    await press(bob, opened, "◀️")
    assert shown_job(answer(opened)) == middle

    # Filters: yours, the most liked first; a period; a search.
    async with bot_sessions.begin() as session:
        session.add(Favorite(user_id=bob.id, job_id=oldest, image_index=1))
        await recount_likes(session, oldest)
    mine = await alice.slash(world.channel, "gallery", user=alice, sort="top")
    assert await browse(alice, mine) == [oldest, newest]
    today = await bob.slash(world.channel, "gallery", period="day")
    assert await browse(bob, today) == [newest, middle]
    found = await bob.slash(world.channel, "gallery", search="lighthouse blue")
    assert await browse(bob, found) == [middle]
    nothing = await bob.slash(world.channel, "gallery", search="secret")  # private: never shown
    assert answer(nothing).content == "Nothing in the gallery matches that yet."


async def test_a_like_from_the_gallery_counts_and_show_reposts_with_working_buttons(
    world: World, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = world.alice, world.bob
    upscale = await finished(world, bot_sessions, user=alice, prompt="a quiet pond", upscale=True)
    opened = await bob.slash(world.channel, "gallery")
    page = answer(opened)
    assert shown_job(page) == upscale and page.attachments[0].filename == "image.png"

    liked = await bob.click(page, custom_id=f"sj:gal:like:{upscale.hex}")
    assert [f.content for f in liked.followups] == ["Added to your favorites ❤️ (1 ❤ in all)."]
    assert field(answer(opened), "❤") == "1"
    async with bot_sessions() as session:
        assert (
            await session.scalar(select(func.count()).select_from(Favorite).where(Favorite.user_id == bob.id))
            == 1
        )
    mine = await bob.slash(world.channel, "gallery", liked=True)
    assert shown_job(answer(mine)) == upscale and field(answer(mine), "❤") == "1"
    assert answer(await alice.slash(world.channel, "gallery", liked=True)).content.startswith("Nothing")

    shown = await bob.click(page, custom_id=f"sj:gal:show:{upscale.hex}")
    assert shown.response is not None and not shown.ephemeral
    posted = result_message(world.channel, upscale)
    assert posted is not None and posted.content.startswith("**a quiet pond")
    assert f"(shown by {bob.mention})" in posted.content
    # Its buttons work: ❤ there is the same favorite (bob takes his back).
    unliked = await bob.click(posted, custom_id=f"sj:fav:{upscale.hex}:1")
    assert [f.content for f in unliked.followups] == ["Removed from your favorites (0 in all)."]


async def test_server_gallery_needs_manage_server_and_the_showcase_posts_once(
    world: World, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = world.alice, world.bob
    showcase = world.guild.create_text_channel("showcase")
    admins = world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[admins])

    # An admin can show /server to anyone: the service still refuses them, and nothing changes.
    bot = world.env.bot
    assert isinstance(bot, SojournBot)
    (server,) = [command for command in await bot.tree.fetch_commands() if command.name == "server"]
    world.guild.set_command_permissions(server.id, {bob: True})
    refused = await bob.slash(world.channel, "server gallery", channel=showcase, likes=1)
    assert answer(refused).content.startswith("Only members with Manage Server")
    set_up = await carol.slash(world.channel, "server gallery", channel=showcase, likes=1)
    assert answer(set_up).content == f"Results that reach 1 ❤ will be posted once in {showcase.mention}."

    original = 123_456_789
    grid = await finished(world, bot_sessions, user=alice, prompt="a golden hour", message_id=original)
    page = answer(await bob.slash(world.channel, "gallery"))
    for _ in range(3):  # ❤, taken back, ❤ again: it crossed 1 ❤ twice, and is posted once
        await bob.click(page, custom_id=f"sj:gal:like:{grid.hex}")
    await world.env.settle()
    posts = showcase.history()
    assert len(posts) == 1
    assert posts[0].content.startswith("**a golden hour")
    assert f"https://discord.com/channels/{world.guild.id}/{world.channel.id}/{original}" in posts[0].content
    async with bot_sessions() as session:
        assert (await session.execute(select(ShowcasePost.job_id, ShowcasePost.message_id))).all() == [
            (grid, posts[0].id)
        ]

    # A ❤ under a result message reaches the showcase too.
    upscale = await finished(world, bot_sessions, user=alice, prompt="a silver dawn", upscale=True)
    await alice.slash(world.channel, "show", job_id=str(upscale))
    message = result_message(world.channel, upscale)
    assert message is not None
    await bob.click(message, custom_id=f"sj:fav:{upscale.hex}:1")
    await eventually(lambda: result_message(showcase, upscale) is not None, what="the showcase post")
    # Deleted by its owner: its showcase post goes too.
    await alice.slash(world.channel, "delete", job=str(upscale))
    assert result_message(showcase, upscale) is None

    off = await carol.slash(world.channel, "server gallery", web="off")
    assert answer(off).content == "No result made here is in the galleries now."
    assert answer(await bob.slash(world.channel, "gallery")).content.startswith("Nothing")


async def test_visibility_takes_a_result_out_of_the_gallery_and_back(
    world: World, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = world.alice, world.bob
    job_id = await finished(world, bot_sessions, user=alice, prompt="a shy heron")
    assert shown_job(answer(await bob.slash(world.channel, "gallery"))) == job_id

    hidden = await alice.slash(world.channel, "visibility", job=str(job_id), to="private")
    assert answer(hidden).content.startswith(f"Result `{job_id}` is private now")
    assert answer(await bob.slash(world.channel, "gallery")).content.startswith("Nothing")
    # Someone else's result reads as missing, whatever they ask.
    refused = await bob.slash(world.channel, "visibility", job=str(job_id), to="public")
    assert answer(refused).content.startswith(f"There is no job {job_id}: check the id")
    mistyped = await alice.slash(world.channel, "visibility", job="not-a-job", to="public")
    assert answer(mistyped).content.startswith("There is no job not-a-job: check the id")

    shown = await alice.slash(world.channel, "visibility", job=str(job_id), to="public")
    assert answer(shown).content == f"Result `{job_id}` is public again: it can be in the galleries."
    assert shown_job(answer(await bob.slash(world.channel, "gallery"))) == job_id


async def test_a_showcase_of_zero_likes_posts_every_public_upscale_as_it_is_delivered(
    world: World, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    showcase = world.guild.create_text_channel("showcase")
    admins = world.guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[admins])
    set_up = await carol.slash(world.channel, "server gallery", channel=showcase)
    assert answer(set_up).content == f"Every public upscale will be posted once in {showcase.mention}."
    bot = world.env.bot
    assert isinstance(bot, SojournBot)

    grid = await finished(world, bot_sessions, user=world.alice, prompt="a grid of foxes")
    upscale = await finished(world, bot_sessions, user=world.alice, prompt="one fox", upscale=True)
    private = await finished(
        world, bot_sessions, user=world.alice, prompt="a secret", upscale=True, private=True
    )
    for job_id in (grid, upscale, private):
        await bot.delivery.deliver(job_id)
    await eventually(lambda: result_message(showcase, upscale) is not None, what="the showcase post")
    await world.env.settle()
    assert [message.content.splitlines()[0].startswith("**one fox") for message in showcase.history()] == [
        True
    ]
    original = result_message(world.channel, upscale)
    assert original is not None and original.jump_url in showcase.history()[0].content
    # Made private: out of the showcase channel too (its own message stays).
    await world.alice.slash(world.channel, "visibility", job=str(upscale), to="private")
    assert showcase.history() == [] and result_message(world.channel, upscale) is not None

    off = await carol.slash(world.channel, "server gallery", showcase="off")
    assert answer(off).content == "Nothing more will be posted in the showcase channel."
    later = await finished(world, bot_sessions, user=world.alice, prompt="another fox", upscale=True)
    await bot.delivery.deliver(later)
    await world.env.settle()
    assert result_message(world.channel, later) is not None
    assert showcase.history() == []


async def test_a_job_knows_whether_everyone_can_view_its_channel(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    everyone = world.guild.default_role
    me = world.guild.me
    assert me is not None
    hidden = world.guild.create_text_channel(
        "hidden",
        overwrites={
            everyone: discord.PermissionOverwrite(view_channel=False),
            world.alice: discord.PermissionOverwrite(view_channel=True),
            me: discord.PermissionOverwrite(view_channel=True, send_messages=True, attach_files=True),
        },
    )
    queue.hold()
    for channel in (world.channel, hidden):
        result = await world.alice.slash(channel, "imagine", prompt="a cat --seed 1")
        assert result.response is not None and result.response.content.startswith("Queued 1 job")
    public, private = await jobs_of(bot_sessions, world.alice.id)
    assert (public.channel_public, private.channel_public) == (True, False)
