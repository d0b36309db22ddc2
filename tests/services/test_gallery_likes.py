"""The gallery's ❤: one per person and result, on grids as on upscales, on Postgres and SQLite."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Favorite
from sojourn.services.buttons import ButtonRefused
from sojourn.services.gallery import toggle_like
from sojourn.services.submission import Origin
from tests.services.gallery_helpers import db, like, make_result, new_id

__all__ = ["db"]

Sessions = async_sessionmaker[AsyncSession]


async def favorites(db: Sessions, job_id: uuid.UUID, user_id: int) -> list[int]:
    async with db() as session:
        found = await session.scalars(
            select(Favorite.image_index).where(Favorite.job_id == job_id, Favorite.user_id == user_id)
        )
        return sorted(found)


async def test_a_like_of_a_grid_is_a_favorite_of_the_grid_and_counts_once(db: Sessions) -> None:
    guild, fan, other = new_id(), new_id(), new_id()
    grid = await make_result(db, guild_id=guild)
    origin = Origin(guild_id=guild)
    assert await toggle_like(db, grid, fan, origin) == (True, 1)
    assert await favorites(db, grid, fan) == [0]
    await like(db, grid, other, index=3)  # ❤ under an image of it: another person
    assert await toggle_like(db, grid, fan, origin) == (False, 1)
    assert await favorites(db, grid, fan) == []


async def test_a_like_takes_back_every_favorite_of_the_result(db: Sessions) -> None:
    guild, fan = new_id(), new_id()
    upscale = await make_result(db, guild_id=guild, upscale=True)
    grid = await make_result(db, guild_id=guild)
    await like(db, grid, fan, index=2)
    await like(db, grid, fan, index=4)
    # They like it already (two of its images): ❤ in the gallery takes both back.
    assert await toggle_like(db, grid, fan, Origin(guild_id=guild)) == (False, 0)
    assert await toggle_like(db, upscale, fan, Origin(guild_id=guild)) == (True, 1)
    assert await favorites(db, upscale, fan) == [1]


async def test_someone_elses_private_result_cannot_be_liked(db: Sessions) -> None:
    guild = new_id()
    private = await make_result(db, guild_id=guild, private=True)
    with pytest.raises(ButtonRefused, match="no longer exists"):
        await toggle_like(db, private, new_id(), Origin(guild_id=guild))
