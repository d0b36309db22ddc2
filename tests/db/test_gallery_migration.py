"""Migration 0007 (the gallery) on Postgres and SQLite: jobs made before it stay out of the
galleries (their channel's visibility was never recorded), and it downgrades cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from db.migrate import downgrade, upgrade
from db.session import make_engine
from tests.conftest import create_database

INSERT_USER = text(
    "INSERT INTO users (id, defaults, prefer_options, prefer_suffix, balance, created_at)"
    " VALUES (1, '{}', '{}', '', 0, '2026-11-01 00:00:00+00')"
)
INSERT_JOB_ROW = text(
    "INSERT INTO jobs (id, user_id, kind, prompt, spec, status, progress, cost, attempts, dispatch,"
    " queued_at, delivery_error_reported, age_restricted)"
    " VALUES ('0f0e0d0c0b0a09080706050403020100', 1, 'imagine', 'a cat', '{}', 'succeeded', 100, 2, 1,"
    " 0, '2026-11-01 00:00:00+00', false, false)"
)


async def _shape(engine) -> tuple[set[str], set[str], set[str], set[str]]:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:

        def read(sync):  # type: ignore[no-untyped-def]
            found = inspect(sync)
            return (
                {column["name"] for column in found.get_columns("jobs")},
                {column["name"] for column in found.get_columns("guild_settings")},
                set(found.get_table_names()),
                {index["name"] for index in found.get_indexes("jobs")},
            )

        return await connection.run_sync(read)


async def _check(url: str, postgres: bool) -> None:
    await asyncio.to_thread(upgrade, url, "0006")
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(INSERT_USER)
            await connection.execute(INSERT_JOB_ROW)

        await asyncio.to_thread(upgrade, url, "0007")
        jobs, guilds, tables, indexes = await _shape(engine)
        assert "channel_public" in jobs
        assert {"web_gallery", "showcase_channel_id", "showcase_likes"} <= guilds
        assert "showcase_posts" in tables
        assert {"ix_jobs_finished", "ix_jobs_guild_finished"} <= indexes
        async with engine.connect() as connection:
            assert not (await connection.execute(text("SELECT channel_public FROM jobs"))).scalar_one()
            if postgres:
                names = await connection.execute(
                    text("SELECT indexname FROM pg_indexes WHERE indexname = 'ix_jobs_prompt_search'")
                )
                assert names.scalar_one_or_none() == "ix_jobs_prompt_search"
                await connection.execute(text("SET enable_seqscan = off"))
                plan = "\n".join(
                    row[0]
                    for row in await connection.execute(
                        text(
                            "EXPLAIN SELECT id FROM jobs WHERE to_tsvector('simple', prompt)"
                            " @@ to_tsquery('simple', 'cat:*')"
                        )
                    )
                )
                assert "ix_jobs_prompt_search" in plan, plan

        await asyncio.to_thread(downgrade, url, "0006")
        jobs, guilds, tables, indexes = await _shape(engine)
        assert "channel_public" not in jobs
        assert not {"web_gallery", "showcase_channel_id", "showcase_likes"} & guilds
        assert "showcase_posts" not in tables
        assert not {"ix_jobs_finished", "ix_jobs_guild_finished", "ix_jobs_prompt_search"} & indexes
        async with engine.connect() as connection:  # the job is still there
            assert (await connection.execute(text("SELECT prompt FROM jobs"))).scalar_one() == "a cat"
    finally:
        await engine.dispose()


async def test_gallery_migration_on_postgres(postgres_admin_url: str) -> None:
    await _check(await create_database(postgres_admin_url), postgres=True)


async def test_gallery_migration_on_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'sojourn.db'}", postgres=False)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
