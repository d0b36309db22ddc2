"""Migration 0009 on Postgres and SQLite: `jobs.private` and `jobs.likes` carry what the rows
said before (private in the spec or on an image; ❤ from the favorites, each person once)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from db.migrate import downgrade, upgrade
from db.session import make_engine
from tests.conftest import create_database

JOBS = {  # id: (spec, any image no longer public)
    "00000000000000000000000000000001": ('{"private": true}', False),
    "00000000000000000000000000000002": ("{}", True),
    "00000000000000000000000000000003": ('{"private": false}', False),
}


async def _check(url: str) -> None:
    await asyncio.to_thread(upgrade, url, "0008")
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            for user in (1, 2, 3):
                await connection.execute(
                    text(
                        "INSERT INTO users (id, defaults, prefer_options, prefer_suffix, balance, created_at)"
                        " VALUES (:id, '{}', '{}', '', 0, '2026-11-01 00:00:00+00')"
                    ),
                    {"id": user},
                )
            for job_id, (spec, hidden_image) in JOBS.items():
                await connection.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, kind, prompt, spec, status, progress, cost, attempts,"
                        " dispatch, queued_at, delivery_error_reported, age_restricted, channel_public)"
                        " VALUES (:id, 1, 'imagine', 'a cat', :spec, 'succeeded', 100, 2, 1, 0,"
                        " '2026-11-01 00:00:00+00', false, false, true)"
                    ),
                    {"id": job_id, "spec": spec},
                )
                await connection.execute(
                    text(
                        'INSERT INTO images (job_id, "index", seed, width, height, storage_key, public,'
                        " created_at) VALUES (:id, 1, 7, 64, 64, 'k', :public, '2026-11-01 00:00:00+00')"
                    ),
                    {"id": job_id, "public": not hidden_image},
                )
            likes = [(1, 0), (1, 2), (2, 1), (3, 4)]  # user 1 on two images: one ❤
            for user, index in likes:
                await connection.execute(
                    text(
                        "INSERT INTO favorites (user_id, job_id, image_index, created_at) VALUES"
                        " (:user, '00000000000000000000000000000003', :index, '2026-11-02 00:00:00+00')"
                    ),
                    {"user": user, "index": index},
                )

        await asyncio.to_thread(upgrade, url, "0009")
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, private, likes FROM jobs ORDER BY id"))
            assert [(bool(private), likes) for _, private, likes in rows] == [
                (True, 0),
                (True, 0),
                (False, 3),
            ]

        await asyncio.to_thread(downgrade, url, "0008")
        async with engine.connect() as connection:  # the jobs are still there
            assert (await connection.execute(text("SELECT count(*) FROM jobs"))).scalar_one() == 3
    finally:
        await engine.dispose()


async def test_gallery_speed_migration_on_postgres(postgres_admin_url: str) -> None:
    await _check(await create_database(postgres_admin_url))


async def test_gallery_speed_migration_on_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'sojourn.db'}")


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
