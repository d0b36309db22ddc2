"""On Postgres, the gallery's pages read its partial indexes: the database itself proves that the
visibility rule's conditions (`visible_in_gallery`) imply the indexes' predicate (`GALLERY_ROWS`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import make_engine, make_sessionmaker
from sojourn.services.gallery import GalleryQuery, gallery_page
from tests.services.gallery_helpers import like, make_result, new_id


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


async def _plan(engine: AsyncEngine, query: GalleryQuery) -> str:
    """EXPLAIN of the SELECT `gallery_page` sends, with its parameters, sequential scans off."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with make_sessionmaker(engine)() as session:
            await gallery_page(session, query)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    statement, parameters = sent[-1]
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")
        rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(("sort", "index"), [("new", "ix_jobs_gallery_new"), ("top", "ix_jobs_gallery_top")])
async def test_each_sort_reads_its_partial_index(
    engine: AsyncEngine, sessions: Any, sort: str, index: str
) -> None:
    for _ in range(3):
        job = await make_result(sessions, guild_id=new_id())
        await like(sessions, job, new_id())
    plan = await _plan(engine, GalleryQuery(sort=sort, limit=50))
    assert index in plan, plan
