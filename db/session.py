"""Engine and session factory: one `AsyncSession` per unit of work."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": POSTGRES_SETTINGS},
    )


# Our statements are short: JIT compiling them cost up to a second on the gallery's top page, and
# a prepared statement's generic plan (Postgres' choice after five runs) cannot see that a page's
# conditions match the gallery's partial indexes, nor how many rows a search word selects.
POSTGRES_SETTINGS = {"jit": "off", "plan_cache_mode": "force_custom_plan"}


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets the bot read while the worker process writes; foreign keys are off by default.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
