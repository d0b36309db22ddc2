"""What members see of results the image safety check holds or removes, of /delete, and of a ban.

The jobs are real submissions (/imagine, credits held, the waiting message posted) whose queue is
held, so no worker renders them: each is completed here as the worker completes one, in one
transaction: claimed, its images stored and recorded with their safety scores, settled, and
screened by `review.screen_result`, the service that decides the hold. Then the bot hears of
it as it hears of any ended job. Everything else (simcord, Postgres, the bot's delivery, the
moderation services) is real.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
import simcord
from PIL import Image as PILImage
from PIL import ImageStat
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import SojournBot
from db.models import (
    Appeal,
    AuditEntry,
    Ban,
    GuildSettings,
    Image,
    Job,
    JobStatus,
    LedgerKind,
    Strike,
)
from sojourn.clock import utcnow
from sojourn.events import JobEvent, RedisEventPublisher
from sojourn.services import lifecycle
from sojourn.services.lifecycle import StoredImage
from sojourn.services.moderation import bans, review
from sojourn.services.moderation.permissions import Actor
from sojourn.settings import Settings
from sojourn.storage import grid_key, image_key
from tests.bot.conftest import GatedQueue, World, eventually, jobs_of
from tests.bot.helpers import attachment_image, button_rows, ledger_kinds, reload

GRID_SIDE = 256  # the stored grid: a fine checkerboard, red on the left half, blue on the right
SQUARE = 4


@pytest.fixture(autouse=True)
async def no_moderation_records(bot_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Moderation's rows point at users, which the next test's clean-up deletes: they go first."""
    yield
    async with bot_sessions.begin() as session:
        for table in (Appeal, Strike, Ban, AuditEntry):
            await session.execute(delete(table))


def checkerboard() -> bytes:
    image = PILImage.new("RGB", (GRID_SIDE, GRID_SIDE))
    pixels = image.load()
    assert pixels is not None
    for x in range(GRID_SIDE):
        for y in range(GRID_SIDE):
            on = (x // SQUARE + y // SQUARE) % 2 == 0
            colour = (255, 0, 0) if x < GRID_SIDE // 2 else (0, 0, 255)
            pixels[x, y] = colour if on else (0, 0, 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def imagine(world: World, sessions: async_sessionmaker[AsyncSession], prompt: str) -> Job:
    """/imagine with the queue held: the job is queued, paid for, and its waiting message posted."""
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    assert result.response is not None and result.response.content.startswith("Queued 1 job")
    return (await jobs_of(sessions, world.alice.id))[-1]


async def complete(
    world: World,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    job: Job,
    score: float,
    *,
    heard: bool = True,
) -> None:
    """What the worker does when a job ends (its images scored `score`), up to the event it
    publishes; with `heard`, until the bot has shown the outcome (without, only a sweep finds it)."""
    bot = sojourn_bot(world)
    png = checkerboard()
    stored = []
    for index in range(5):  # 0: the grid; 1-4: its images
        key = grid_key(job.id) if index == 0 else image_key(job.id, index)
        bot.storage.put(key, png)
        stored.append(StoredImage(index, seed=7 + index, width=GRID_SIDE, height=GRID_SIDE, storage_key=key))
    async with sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=JobStatus.RUNNING, attempts=1, started_at=utcnow(), heartbeat_at=utcnow())
        )
        assert await lifecycle.complete_job(session, job.id, 1, stored)
        await session.execute(update(Image).where(Image.job_id == job.id).values(safety_score=score))
        await review.screen_result(session, settings.moderation, job.id)
    if not heard:
        return
    assert settings.redis_url is not None
    RedisEventPublisher(settings.redis_url).publish(JobEvent(job_id=str(job.id), kind="succeeded"))

    async def shown() -> bool:
        return (await reload(sessions, job.id)).delivered_at is not None

    await eventually(shown, what=f"the outcome of {job.id} to be shown")
    await world.env.settle()


def sojourn_bot(world: World) -> SojournBot:
    bot = world.env.bot
    assert isinstance(bot, SojournBot)
    return bot


def message(world: World, message_id: int | None) -> discord.Message | None:
    return next((m for m in world.channel.history() if m.id == message_id), None)


def message_deleter(world: World) -> simcord.MemberActor:
    """A member who may delete others' messages (Manage Messages), as a server's moderators may."""
    role = world.guild.create_role("tidy", permissions=discord.Permissions(manage_messages=True))
    return world.guild.add_member(world.env.create_user("tidy"), roles=[role])


def moderator(world: World) -> Actor:
    return Actor(user_id=world.bob.id, guild_id=world.guild.id, manage_guild=True)


def grid_buttons(job: Job) -> list[list[tuple[str, str]]]:
    hex_id = job.id.hex
    return [
        [(f"U{i}", f"sj:u:{hex_id}:{i}") for i in range(1, 5)],
        [(f"V{i}", f"sj:v:{hex_id}:{i}") for i in range(1, 5)],
        [("🔄", f"sj:r:{hex_id}")],
    ]


def headline(job: Job, member: Any) -> str:
    return f"**{discord.utils.escape_markdown(job.prompt)}** - {member.mention}"


async def show_answer(world: World, member: Any, job: Job) -> str:
    shown = await member.slash(world.channel, "show", job_id=str(job.id))
    assert shown.ephemeral and shown.response is not None
    return str(shown.response.content)


# --- held, then approved ------------------------------------------------------------------------


@pytest.mark.parametrize("approval_heard", [True, False], ids=["redeliver", "sweep"])
async def test_a_held_result_shows_a_blurred_spoiler_and_becomes_the_result_once_approved(
    world: World,
    bot_sessions: async_sessionmaker[AsyncSession],
    bot_settings: Settings,
    queue: GatedQueue,
    approval_heard: bool,
) -> None:
    queue.hold()
    job = await imagine(world, bot_sessions, "a lighthouse at dusk --q .25 --seed 5")
    waiting = world.channel.last_message
    assert waiting is not None
    bot = sojourn_bot(world)

    await complete(world, bot_settings, bot_sessions, job, score=0.95)  # over the default 0.7

    # The waiting message became the notice: the prompt, what happens next, a blurred spoiler, no buttons.
    held = message(world, waiting.id)
    assert held is not None and held.components == []
    assert held.content == (
        f"{headline(job, world.alice)} — held for review by the image safety check. "
        "A moderator will look at it; you will see it here if approved."
    )
    (attachment,) = held.attachments
    assert attachment.is_spoiler() and attachment.filename == "SPOILER_held.png"
    preview = await attachment_image(held)
    assert preview.format == "PNG" and max(preview.size) <= 128 < GRID_SIDE
    # Colours and rough shapes stay (red left, blue right); the checkerboard is gone.
    width, height = preview.size
    left = ImageStat.Stat(preview.crop((0, 0, width // 4, height)))
    right = ImageStat.Stat(preview.crop((width * 3 // 4, 0, width, height)))
    assert left.mean[0] > 100 > left.mean[2] and right.mean[2] > 100 > right.mean[0]
    assert max(left.stddev + right.stddev) < 8, "the preview must show no detail"
    assert len(world.channel.history()) == 1  # nothing else was posted: no full image anywhere
    delivered = await reload(bot_sessions, job.id)
    assert delivered.delivered_at is not None and delivered.message_id == waiting.id  # the sweep is done

    # Not for anyone through /show, nor are its buttons anywhere.
    held_answer = f"Job {job.id} is held for a moderator's review: it can be shown once it is approved."
    assert await show_answer(world, world.alice, job) == held_answer
    assert await show_answer(world, world.bob, job) == held_answer
    assert await world.alice.autocomplete(world.channel, "show", "job_id", "") == []

    await review.approve(bot_sessions, moderator(world), job.id)
    if approval_heard:
        await bot.delivery.redeliver(job.id)
    else:  # a bot that missed the approval (restarted, or another shard): the sweep finds it
        assert await bot.delivery.sweep() == 1
    await world.env.settle()

    # The same message, now exactly the result a normal delivery posts: the grid and its buttons.
    result = message(world, waiting.id)
    assert result is not None
    assert result.content == headline(job, world.alice)
    assert [a.filename for a in result.attachments] == ["grid.png"]
    assert (await attachment_image(result)).size == (GRID_SIDE, GRID_SIDE)
    assert button_rows(result) == grid_buttons(job)
    assert await bot.delivery.sweep() == 0  # delivered for good
    await bot.delivery.redeliver(job.id)  # asked twice (a double-clicked Approve): the same again
    assert [m.id for m in world.channel.history()] == [waiting.id]
    assert message(world, waiting.id).content == headline(job, world.alice)  # type: ignore[union-attr]

    shown = await world.bob.slash(world.channel, "show", job_id=str(job.id))
    assert shown.response is not None and not shown.ephemeral
    assert button_rows(shown.response.message) == grid_buttons(job)


async def test_a_held_result_with_no_waiting_message_is_posted_as_a_notice_and_then_as_the_result(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    queue.hold()
    job = await imagine(world, bot_sessions, "a storm over the sea --q .25 --seed 6")
    waiting = world.channel.last_message
    assert waiting is not None
    deleter = message_deleter(world)
    await deleter.delete(waiting)  # a moderator of the server deleted it
    bot = sojourn_bot(world)

    await complete(world, bot_settings, bot_sessions, job, score=0.9)
    (notice,) = world.channel.history()
    assert notice.content.endswith("you will see it here if approved.") and notice.components == []
    assert [a.filename for a in notice.attachments] == ["SPOILER_held.png"]

    await deleter.delete(notice)
    await review.approve(bot_sessions, moderator(world), job.id)
    await bot.delivery.redeliver(job.id)
    (result,) = world.channel.history()
    assert result.id != notice.id and button_rows(result) == grid_buttons(job)
    assert (await reload(bot_sessions, job.id)).message_id == result.id


# --- removed by the check -----------------------------------------------------------------------


async def test_a_result_the_check_removes_in_block_mode_is_a_notice_with_no_image(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    async with bot_sessions.begin() as session:
        session.add(GuildSettings(guild_id=world.guild.id, safety_mode="block"))
    queue.hold()
    job = await imagine(world, bot_sessions, "a crowded market --q .25 --seed 8")
    waiting = world.channel.last_message
    assert waiting is not None

    await complete(world, bot_settings, bot_sessions, job, score=0.99)

    (notice,) = world.channel.history()
    assert notice.id == waiting.id and notice.attachments == [] and notice.components == []
    assert notice.content == (
        f"{headline(job, world.alice)} — removed after the image safety check flagged it: the "
        f"{job.cost} credits were refunded, and it counts as a strike."
    )
    assert await ledger_kinds(bot_sessions, job.id) == [
        LedgerKind.HOLD,
        LedgerKind.SETTLE,
        LedgerKind.REMOVED,
    ]
    assert (await reload(bot_sessions, job.id)).delivered_at is not None
    assert await show_answer(world, world.alice, job) == (
        f"Job {job.id} was removed by moderation, so it cannot be shown."
    )
    assert await world.alice.autocomplete(world.channel, "delete", "job", "") == []


# --- /delete --------------------------------------------------------------------------------------


async def test_delete_takes_the_result_and_its_message_down_once(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    queue.hold()
    job = await imagine(world, bot_sessions, "a paper lantern --q .25 --seed 9")
    await complete(world, bot_settings, bot_sessions, job, score=0.05)  # a normal result
    (result,) = world.channel.history()
    assert button_rows(result) == grid_buttons(job)

    choices = await world.alice.autocomplete(world.channel, "delete", "job", "lantern")
    assert [c["value"] for c in choices] == [str(job.id)]
    assert await world.bob.autocomplete(world.channel, "delete", "job", "") == []
    not_his = await world.bob.slash(world.channel, "delete", job=str(job.id))
    assert not_his.ephemeral and not_his.response is not None
    assert not_his.response.content == (
        f"Job {job.id} belongs to someone else: you can only delete your own jobs."
    )
    assert [m.id for m in world.channel.history()] == [result.id]

    deleted = await world.alice.slash(world.channel, "delete", job=str(job.id))
    assert deleted.ephemeral and deleted.response is not None
    assert deleted.response.content == (
        f"Deleted your result `{job.id}`. Its message is gone, and it is out of /show and the "
        "galleries. Its credits stay spent."
    )
    assert world.channel.history() == []
    assert (await reload(bot_sessions, job.id)).removed_at is not None

    again = await world.alice.slash(world.channel, "delete", job=str(job.id))
    assert again.response is not None and again.response.content == f"Job {job.id} was already deleted."
    assert await world.alice.autocomplete(world.channel, "delete", "job", "") == []
    assert await show_answer(world, world.alice, job) == f"Job {job.id} was deleted, so it cannot be shown."


async def test_a_result_deleted_before_it_was_posted_is_never_posted(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    queue.hold()
    job = await imagine(world, bot_sessions, "a hidden door --q .25 --seed 10")
    bot = sojourn_bot(world)
    await complete(world, bot_settings, bot_sessions, job, score=0.05, heard=False)  # the event is lost

    deleted = await world.alice.slash(world.channel, "delete", job=str(job.id))
    assert deleted.response is not None and deleted.response.content.startswith(
        f"Deleted your result `{job.id}`. Its message is gone"
    )
    assert await bot.delivery.sweep() == 1
    assert world.channel.history() == []
    assert (await reload(bot_sessions, job.id)).delivered_at is not None
    assert await bot.delivery.sweep() == 0


# --- a ban in /info -------------------------------------------------------------------------------


async def test_info_shows_a_ban_in_force_here_with_its_reason_and_end(
    world: World, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with bot_sessions.begin() as session:
        outcome = await bans.impose_ban(
            session, guild_id=world.guild.id, user_id=world.alice.id, hours=2, reason="spam", by=world.bob.id
        )
    ends_at = outcome.ban.ends_at
    assert isinstance(ends_at, dt.datetime)

    info = await world.alice.slash(world.channel, "info")  # a banned member may still ask

    assert info.ephemeral and info.response is not None
    (embed,) = info.response.embeds
    first = embed.fields[0]
    seconds = int(ends_at.timestamp())
    assert first.name == "🚫 Banned on this server"
    assert first.value == (
        f"You are banned until <t:{seconds}:f> (<t:{seconds}:R>): spam.\n"
        "Ask a moderator if you think this is a mistake."
    )
    assert embed.colour == discord.Colour.red()
    assert any(field.name == "Balance" for field in embed.fields)

    elsewhere = world.env.create_guild("Elsewhere")
    member = elsewhere.add_member(world.alice.user)
    there = await member.slash(elsewhere.create_text_channel("art"), "info")
    assert there.response is not None
    assert all(not (f.name or "").startswith("🚫") for f in there.response.embeds[0].fields)

    bob = await world.bob.slash(world.channel, "info")
    assert bob.response is not None
    assert all(not (f.name or "").startswith("🚫") for f in bob.response.embeds[0].fields)
