"""Fixtures of the fault suite: private PostgreSQL and Redis servers, and worlds on them.

The faults stop and restart the servers, so this package never touches the session-wide ones that
`scripts/with-services.sh` starts for the other tests: it runs a cluster and a Redis of its own
for the whole package (initdb costs seconds), and each test, or each module whose rounds share
one worker, gets a world of its own on them (a database, a Redis database, a data directory).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import World, open_world
from tests.faults.servers import PrivatePostgres, PrivateRedis

# Redis databases 1-15 for the worlds (a restart without data empties all of them anyway).
_redis_databases = itertools.count(1)


@pytest.fixture(scope="package")
def servers_root() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="sojourn-faults-"))
    root.chmod(0o755)
    (root / "pg").mkdir()
    if os.getuid() == 0:
        shutil.chown(root / "pg", "postgres", "postgres")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def private_postgres(servers_root: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(servers_root / "pg")
    server.create()
    yield server
    server.close()


@pytest.fixture(scope="package")
def private_redis(servers_root: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(servers_root / "redis", appendonly=True)
    server.start()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def servers_running_after(private_postgres: PrivatePostgres, private_redis: PrivateRedis) -> Iterator[None]:
    """A test that failed half-way through a fault must not leave the next one without a server."""
    yield
    if not private_redis.running():
        private_redis.start()
    if not private_postgres.running():
        private_postgres.start()


WorldFactory = Callable[..., Awaitable[World]]


async def _open(
    postgres: PrivatePostgres, redis: PrivateRedis, tiny_models: object, data_dir: Path, **extra: object
) -> World:
    return await open_world(
        postgres.admin_url, redis.url(), next(_redis_databases) % 16 or 1, data_dir, tiny_models, **extra
    )


@pytest.fixture
async def make_world(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tiny_models, tmp_path_factory
) -> AsyncIterator[WorldFactory]:  # type: ignore[no-untyped-def]
    """Worlds for one test, closed (workers stopped) after it."""
    worlds: list[World] = []

    async def make(**extra: object) -> World:
        world = await _open(
            private_postgres, private_redis, tiny_models, tmp_path_factory.mktemp("world"), **extra
        )
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        await world.close()


@pytest.fixture(scope="module")
async def module_world(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tiny_models, tmp_path_factory
) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    """One world, with one worker, for every round of a module's faults."""
    world = await _open(private_postgres, private_redis, tiny_models, tmp_path_factory.mktemp("world"))
    world.start_worker()
    yield world
    await world.close()
