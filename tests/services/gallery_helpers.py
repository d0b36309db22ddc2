"""Shared by the gallery tests: a migrated database per backend, and finished results made to
order (rows as the worker's completion leaves them: a grid and its four images, or one image)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.migrate import upgrade_async
from db.models import Favorite, GuildSettings, HeldResult, Image, Job, JobKind, JobStatus
from db.session import make_engine, make_sessionmaker
from sojourn.clock import utcnow
from sojourn.services import credits
from sojourn.services.gallery import GalleryPage, GalleryQuery, gallery_page
from sojourn.services.like_counts import recount_likes
from tests.conftest import create_migrated_database

BACKENDS = ("postgres", "sqlite")
_ids = itertools.count(700_000_000)


def new_id() -> int:
    """A fresh Discord-like id (users, servers, channels), unique in the test run."""
    return next(_ids)


@pytest.fixture(scope="module", params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database on each backend, shared by one test module."""
    if request.param == "postgres":
        url = await create_migrated_database(postgres_admin_url)
    else:
        path: Path = tmp_path_factory.mktemp("gallery") / "sojourn.db"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade_async(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def make_result(
    sessions: async_sessionmaker[AsyncSession],
    *,
    guild_id: int | None,
    user_id: int | None = None,
    prompt: str = "a lighthouse at dusk",
    channel_public: bool = True,
    age_restricted: bool = False,
    private: bool = False,
    status: JobStatus = JobStatus.SUCCEEDED,
    upscale: bool = False,
    finished_at: dt.datetime | None = None,
) -> uuid.UUID:
    """A result as completion leaves it; `finished_at` defaults to the clock's now."""
    user_id = user_id or new_id()
    job_id = uuid.uuid4()
    finished = finished_at or utcnow()
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
        session.add(
            Job(
                id=job_id,
                user_id=user_id,
                kind=JobKind.UPSCALE if upscale else JobKind.IMAGINE,
                prompt=f"{prompt} --seed 7",
                spec={"private": private, "images": 1 if upscale else 4},
                status=status,
                cost=2,
                queued_at=finished - dt.timedelta(seconds=30),
                finished_at=finished if status != JobStatus.QUEUED else None,
                guild_id=guild_id,
                channel_id=new_id() if guild_id else None,
                channel_public=channel_public,
                age_restricted=age_restricted,
                private=private,
            )
        )
        await session.flush()
        if status == JobStatus.SUCCEEDED:
            indexes = [1] if upscale else [0, 1, 2, 3, 4]
            session.add_all(
                Image(
                    job_id=job_id,
                    index=index,
                    seed=7 + index,
                    width=64,
                    height=64,
                    storage_key=f"jobs/{job_id}/{index}.png",
                    public=not private,
                    created_at=finished,
                )
                for index in indexes
            )
    return job_id


async def like(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, *users: int, index: int = 0
) -> None:
    async with sessions.begin() as session:
        for user_id in users:
            await credits.ensure_user(session, user_id)
            session.add(Favorite(user_id=user_id, job_id=job_id, image_index=index, created_at=utcnow()))
        await recount_likes(session, job_id)


async def hold(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, guild_id: int) -> None:
    async with sessions.begin() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        session.add(
            HeldResult(job_id=job_id, user_id=job.user_id, guild_id=guild_id, score=0.9, reason="test")
        )


async def turn_web_gallery(sessions: async_sessionmaker[AsyncSession], guild_id: int, on: bool) -> None:
    async with sessions.begin() as session:
        row = await session.get(GuildSettings, guild_id)
        if row is None:
            session.add(GuildSettings(guild_id=guild_id, web_gallery=on))
        else:
            row.web_gallery = on


async def page(sessions: async_sessionmaker[AsyncSession], **query: object) -> GalleryPage:
    async with sessions() as session:
        return await gallery_page(session, GalleryQuery(**query))  # type: ignore[arg-type]


async def shown(sessions: async_sessionmaker[AsyncSession], **query: object) -> list[uuid.UUID]:
    """The job ids on the first page (large enough for one test's results)."""
    return [item.job_id for item in (await page(sessions, limit=100, **query)).items]
