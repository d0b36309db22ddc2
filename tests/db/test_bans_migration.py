"""Migration 0006 carries `users.banned` over into `bans`: each banned user gets one ban from every
server with no end, and the flag column goes; its downgrade sets the flag again from those bans."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from db.migrate import downgrade, upgrade
from db.session import make_engine, make_sessionmaker
from sojourn.services.moderation import bans
from tests.conftest import create_database

# (id, banned) at revision 0005.
USERS = {1: True, 2: True, 3: False, 4: False, 5: False}
INSERT_USER = text(
    "INSERT INTO users (id, banned, defaults, balance, created_at)"
    " VALUES (:id, :banned, '{}', 0, '2026-11-01 00:00:00+00')"
)
A_SERVER = 4242


async def _columns(engine, table: str) -> set[str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: {column["name"] for column in inspect(sync).get_columns(table)}
        )


async def _check_bans_carried_over(url: str) -> None:
    await asyncio.to_thread(upgrade, url, "0005")
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            for user_id, banned in USERS.items():
                await connection.execute(INSERT_USER, {"id": user_id, "banned": banned})

        await asyncio.to_thread(upgrade, url, "0006")

        assert "banned" not in await _columns(engine, "users")
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT user_id, guild_id, ends_at, lifted_at, banned_by, reason FROM bans"
                        " ORDER BY user_id"
                    )
                )
            ).all()
        assert [tuple(row[:5]) for row in rows] == [(1, None, None, None, None), (2, None, None, None, None)]
        assert all(row.reason for row in rows)
        sessions = make_sessionmaker(engine)
        async with sessions() as session:  # the carried-over ban is in force everywhere
            for guild_id in (A_SERVER, None):
                assert await bans.active_ban(session, 1, guild_id) is not None
                assert await bans.active_ban(session, 3, guild_id) is None

        # Since then: user 2's ban lifted, user 4 banned from every server for a while, user 5
        # banned from one server. None of those is the old flag's kind of ban.
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE bans SET lifted_at = CURRENT_TIMESTAMP WHERE user_id = 2"))
            await connection.execute(
                text(
                    "INSERT INTO bans (user_id, guild_id, reason, created_at, ends_at) VALUES"
                    " (4, NULL, 'timed', '2026-11-01 00:00:00+00', '2036-11-01 00:00:00+00'),"
                    f" (5, {A_SERVER}, 'one server', '2026-11-01 00:00:00+00', NULL)"
                )
            )

        await asyncio.to_thread(downgrade, url, "0005")

        async with engine.connect() as connection:
            flags = dict((await connection.execute(text("SELECT id, banned FROM users"))).all())
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert {user_id: bool(flag) for user_id, flag in flags.items()} == {
            1: True,
            2: False,
            3: False,
            4: False,
            5: False,
        }
        assert "bans" not in tables
    finally:
        await engine.dispose()


async def test_bans_carried_over_on_postgres(postgres_admin_url: str) -> None:
    await _check_bans_carried_over(await create_database(postgres_admin_url))


async def test_bans_carried_over_on_sqlite(tmp_path: Path) -> None:
    await _check_bans_carried_over(f"sqlite+aiosqlite:///{tmp_path / 'sojourn.db'}")


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
