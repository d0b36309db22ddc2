"""The migrations and the models agree, on SQLite and on Postgres, and they run both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.migrate import downgrade, upgrade
from db.models import Base
from db.session import make_engine
from tests.conftest import create_database


async def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:

            def inspect_sync(sync_connection):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), set(
                    inspect(sync_connection).get_table_names()
                )

            return await connection.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def _check_round_trip(url: str) -> None:
    import asyncio

    await asyncio.to_thread(upgrade, url)
    diff, tables = await _diff_and_tables(url)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"users", "ledger", "jobs", "images"} <= tables

    await asyncio.to_thread(downgrade, url)
    _, tables = await _diff_and_tables(url)
    assert tables <= {"alembic_version"}

    await asyncio.to_thread(upgrade, url)
    diff, _ = await _diff_and_tables(url)
    assert diff == []


async def test_sqlite_migrations_match_models_and_round_trip(tmp_path: Path) -> None:
    await _check_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'sojourn.db'}")


async def test_postgres_migrations_match_models_and_round_trip(postgres_admin_url: str) -> None:
    await _check_round_trip(await create_database(postgres_admin_url))


def test_every_model_table_has_a_migration() -> None:
    migration = (Path(__file__).resolve().parents[2] / "migrations" / "versions").glob("*.py")
    text = "\n".join(path.read_text() for path in migration)
    for table in Base.metadata.tables:
        assert f"'{table}'" in text or f'"{table}"' in text, table


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
