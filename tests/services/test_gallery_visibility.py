"""The gallery's one visibility rule, a test per rule, on Postgres and SQLite: what the gallery
query lists, and who may open a result's page (`can_see`: a private result reads as missing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobStatus, ShowcasePost
from sojourn.clock import FixedClock, use_clock
from sojourn.errors import UserError
from sojourn.services.gallery import (
    can_see,
    record_showcase_message,
    record_showcase_post,
    set_private,
    set_showcase,
    set_web_gallery,
    showcase_due,
)
from sojourn.services.moderation import review
from sojourn.services.moderation.permissions import Actor
from tests.conftest import PINNED_START
from tests.services.gallery_helpers import db, hold, like, make_result, new_id, shown

__all__ = ["db"]

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def clock() -> Iterator[FixedClock]:
    with use_clock(FixedClock(PINNED_START)) as pinned:
        assert isinstance(pinned, FixedClock)
        yield pinned


async def _in_both_galleries(db: Sessions, guild_id: int, job_id: uuid.UUID) -> bool:
    """Listed in its server's gallery (Discord) and in the web gallery; asserts they agree."""
    in_server = job_id in await shown(db, guild_id=guild_id)
    owner = await _owner(db, job_id)
    on_web = job_id in await shown(db, user_id=owner)
    assert in_server == on_web
    return in_server


async def _owner(db: Sessions, job_id: uuid.UUID) -> int:
    async with db() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job.user_id


async def _page_for(db: Sessions, job_id: uuid.UUID, viewer: int | None, moderator: bool = False) -> bool:
    async with db() as session:
        return await can_see(session, job_id, viewer, moderator) is not None


async def test_a_public_result_is_listed_and_anyone_sees_its_page(db: Sessions) -> None:
    guild = new_id()
    grid = await make_result(db, guild_id=guild)
    upscale = await make_result(db, guild_id=guild, upscale=True)
    async with db() as session:
        from sojourn.services.gallery import GalleryQuery, gallery_page

        items = (await gallery_page(session, GalleryQuery(guild_id=guild))).items
    assert {(item.job_id, item.image_index) for item in items} == {(grid, 0), (upscale, 1)}
    assert await _in_both_galleries(db, guild, grid)
    assert await _page_for(db, grid, None) and await _page_for(db, grid, new_id())


async def test_a_private_result_is_not_listed_and_its_page_reads_as_missing(db: Sessions) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner, private=True)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, None)
    assert not await _page_for(db, job, new_id())
    assert await _page_for(db, job, owner)
    assert await _page_for(db, job, new_id(), moderator=True)
    # A stranger cannot tell it from a job that never existed.
    assert not await _page_for(db, uuid.uuid4(), new_id())


async def test_stealth_is_stored_as_private() -> None:
    from tests.prompt.helpers import parse_one

    assert parse_one("a cat --stealth").private
    assert parse_one("a cat --private").private
    assert not parse_one("a cat").private  # public is the default


async def test_switching_a_result_to_private_later_removes_it(db: Sessions) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner)
    assert await _in_both_galleries(db, guild, job)
    with pytest.raises(UserError):
        await set_private(db, new_id(), job, True)  # only its owner
    await set_private(db, owner, job, True)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, new_id())
    await set_private(db, owner, job, False)
    assert await _in_both_galleries(db, guild, job)


async def test_the_jobs_private_column_is_what_the_galleries_read(db: Sessions) -> None:
    guild = new_id()
    job = await make_result(db, guild_id=guild)
    async with db.begin() as session:
        await session.execute(update(Job).where(Job.id == job).values(private=True))
    assert not await _in_both_galleries(db, guild, job)


async def test_a_channel_everyone_cannot_view_keeps_it_out(db: Sessions) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner, channel_public=False)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, new_id())
    assert await _page_for(db, job, owner)


async def test_an_age_restricted_channel_keeps_it_out(db: Sessions) -> None:
    guild = new_id()
    job = await make_result(db, guild_id=guild, age_restricted=True)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, new_id())


async def test_a_direct_message_result_is_never_listed(db: Sessions) -> None:
    owner = new_id()
    job = await make_result(db, guild_id=None, user_id=owner)
    assert job not in await shown(db, user_id=owner)
    assert await _page_for(db, job, owner) and not await _page_for(db, job, new_id())


async def test_a_server_with_the_gallery_off_keeps_all_its_results_out(db: Sessions) -> None:
    guild = new_id()
    job = await make_result(db, guild_id=guild)
    admin = Actor(user_id=new_id(), guild_id=guild, manage_guild=True)
    with pytest.raises(UserError, match="Manage Server"):
        await set_web_gallery(db, Actor(user_id=new_id(), guild_id=guild), False)
    assert await _in_both_galleries(db, guild, job)
    await set_web_gallery(db, admin, False)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, new_id())
    await set_web_gallery(db, admin, True)
    assert await _in_both_galleries(db, guild, job)


async def test_a_removed_result_is_gone_even_for_its_owner(db: Sessions) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner)
    async with db.begin() as session:
        await session.execute(update(Job).where(Job.id == job).values(removed_at=PINNED_START))
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, owner)
    assert await _page_for(db, job, new_id(), moderator=True)


async def test_a_held_result_is_for_moderators_only_until_approved(db: Sessions) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner)
    await hold(db, job, guild)
    assert not await _in_both_galleries(db, guild, job)
    assert not await _page_for(db, job, owner)
    assert await _page_for(db, job, new_id(), moderator=True)

    await review.approve(db, Actor(user_id=new_id(), guild_id=guild, manage_guild=True), job)
    assert await _in_both_galleries(db, guild, job)
    assert await _page_for(db, job, new_id())


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED])
async def test_a_job_that_did_not_succeed_is_never_listed(db: Sessions, status: JobStatus) -> None:
    guild, owner = new_id(), new_id()
    job = await make_result(db, guild_id=guild, user_id=owner, status=status)
    assert job not in await shown(db, guild_id=guild)
    assert not await _page_for(db, job, owner)
    assert not await _page_for(db, job, owner, moderator=True)


async def test_a_server_gallery_lists_only_that_server(db: Sessions) -> None:
    here, elsewhere = new_id(), new_id()
    mine = await make_result(db, guild_id=here)
    theirs = await make_result(db, guild_id=elsewhere)
    assert await shown(db, guild_id=here) == [mine]
    assert await shown(db, guild_id=elsewhere) == [theirs]


async def test_the_showcase_posts_a_result_once_it_has_enough_likes(db: Sessions, clock: FixedClock) -> None:
    guild, channel = new_id(), new_id()
    job = await make_result(db, guild_id=guild)
    admin = Actor(user_id=new_id(), guild_id=guild, manage_guild=True)
    with pytest.raises(UserError, match="0 to 10000"):
        await set_showcase(db, admin, channel, -1)
    with pytest.raises(UserError, match="Manage Server"):
        await set_showcase(db, Actor(user_id=new_id(), guild_id=guild), channel, 2)

    async def due() -> bool:
        async with db() as session:
            return await showcase_due(session, job)

    assert not await due()  # no showcase yet
    await set_showcase(db, admin, channel, 2)
    fan = new_id()
    await like(db, job, fan, index=0)
    await like(db, job, fan, index=2)  # one person, two images: one ❤
    clock.advance(seconds=1)
    assert not await due()
    await like(db, job, new_id(), index=4)
    clock.advance(seconds=1)
    assert await due()
    async with db.begin() as session:
        assert await record_showcase_post(session, job, channel)
    async with db.begin() as session:
        assert not await record_showcase_post(session, job, channel)  # exactly once
    assert not await due()
    message = new_id()
    await record_showcase_message(db, job, message)
    async with db() as session:
        assert (
            await session.scalar(select(ShowcasePost.message_id).where(ShowcasePost.job_id == job)) == message
        )


async def test_a_showcase_of_zero_likes_takes_every_public_upscale_and_no_grid(db: Sessions) -> None:
    guild = new_id()
    admin = Actor(user_id=new_id(), guild_id=guild, manage_guild=True)
    await set_showcase(db, admin, new_id(), 0)
    upscale = await make_result(db, guild_id=guild, upscale=True)
    private = await make_result(db, guild_id=guild, upscale=True, private=True)
    grid = await make_result(db, guild_id=guild)

    async def due(job: uuid.UUID) -> bool:
        async with db() as session:
            return await showcase_due(session, job)

    assert [await due(upscale), await due(private), await due(grid)] == [True, False, False]
    await set_showcase(db, admin, None)  # off
    assert not await due(upscale)


async def test_a_held_result_is_never_due_for_the_showcase(db: Sessions, clock: FixedClock) -> None:
    guild = new_id()
    job = await make_result(db, guild_id=guild)
    await set_showcase(db, Actor(user_id=new_id(), guild_id=guild, manage_guild=True), new_id(), 1)
    await like(db, job, new_id())
    await hold(db, job, guild)
    clock.advance(seconds=1)
    async with db() as session:
        assert not await showcase_due(session, job)
