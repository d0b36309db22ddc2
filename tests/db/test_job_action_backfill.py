"""Migration 0004 stores each existing derived job's button, so nothing is guessed from image sizes later."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from db.migrate import upgrade
from db.session import make_engine
from tests.conftest import create_database

GRID, SINGLE = {"images": 4}, {"images": 1}
INSERT_USER = text(
    "INSERT INTO users (id, defaults, balance, created_at) VALUES (1, '{}', 0, '2026-11-01 00:00:00+00')"
)
INSERT_JOB = text(
    "INSERT INTO jobs (id, user_id, kind, parent_job_id, prompt, spec, status, progress, cost, attempts,"
    " queued_at, delivery_error_reported) VALUES (:id, 1, :kind, :parent, 'a fox', :spec, 'succeeded',"
    " 100, 1, 1, '2026-11-01 00:00:00+00', false)"
)


def _jobs() -> list[tuple[uuid.UUID, str, dict[str, object], uuid.UUID | None, str | None]]:
    """(id, kind, spec, parent, the action code 0004 must store), parents first."""
    grid, upscale, up_again = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    return [
        (grid, "imagine", GRID, None, None),
        (upscale, "upscale", SINGLE, grid, "u"),
        (up_again, "upscale", SINGLE, upscale, "up"),
        (uuid.uuid4(), "variation", {"action": "vary_strong"}, grid, "v"),
        (uuid.uuid4(), "variation", {"action": "vary_strong"}, upscale, "vs"),
        (uuid.uuid4(), "variation", {"action": "vary_subtle"}, upscale, "vt"),
        (uuid.uuid4(), "reroll", GRID, grid, "r"),
        (uuid.uuid4(), "zoom", {"action": "zoom_out", "zoom": 1.5}, upscale, "z15"),
        (uuid.uuid4(), "zoom", {"action": "zoom_out", "zoom": 2.0}, upscale, "z2"),
    ]


async def _check_backfill(url: str) -> None:
    await asyncio.to_thread(upgrade, url, "0003")
    sqlite = url.startswith("sqlite")

    def bound(job_id: uuid.UUID | None) -> object:
        return job_id.hex if sqlite and job_id is not None else job_id  # SQLite stores 32 hex digits

    jobs = _jobs()
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(INSERT_USER)
            for job_id, kind, spec, parent, _ in jobs:
                values = {
                    "id": bound(job_id),
                    "parent": bound(parent),
                    "kind": kind,
                    "spec": json.dumps(spec),
                }
                await connection.execute(INSERT_JOB, values)
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, action FROM jobs"))).all()
    finally:
        await engine.dispose()
    stored = {uuid.UUID(str(job_id)): action for job_id, action in rows}
    assert stored == {job_id: action for job_id, _, _, _, action in jobs}


async def test_backfill_on_sqlite(tmp_path: Path) -> None:
    await _check_backfill(f"sqlite+aiosqlite:///{tmp_path / 'sojourn.db'}")


async def test_backfill_on_postgres(postgres_admin_url: str) -> None:
    await _check_backfill(await create_database(postgres_admin_url))


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
