"""Shared fixtures: real PostgreSQL, Redis and S3 (started by scripts/with-services.sh), tiny models."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest import mock

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.migrate import upgrade_async
from db.session import make_engine, make_sessionmaker
from sojourn.bootstrap import start_worker, stop_child, wait_until_ready, worker_log_path
from sojourn.clock import ShiftedClock, use_clock
from sojourn.settings import Settings, StorageBackend, StorageSettings

REPO = Path(__file__).resolve().parent.parent
TINY_MODELS_CACHE = REPO / ".sojourn" / "test-models"
# The day tests that count daily grants pin (through the clock the services read).
PINNED_START = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run the suite with `make test`, which starts PostgreSQL, Redis and S3"
        )
    return value


@pytest.fixture
def pinned_clock() -> Iterator[ShiftedClock]:
    """The services' clock starting at `PINNED_START` (noon, so a test never crosses midnight)."""
    with use_clock(ShiftedClock(PINNED_START)) as clock:
        assert isinstance(clock, ShiftedClock)
        yield clock


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return _required_env("SOJOURN_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def redis_base_url() -> str:
    return _required_env("SOJOURN_TEST_REDIS_URL")


@pytest.fixture(scope="session")
def s3_storage_settings() -> StorageSettings:
    """The S3 backend on the suite's SeaweedFS, in a bucket of this run's own (made on first use);
    give each test a prefix of its own (`s3_prefix`)."""
    return StorageSettings(
        backend=StorageBackend.S3,
        s3_endpoint_url=_required_env("SOJOURN_TEST_S3_ENDPOINT"),
        s3_bucket=f"sojourn-test-{uuid.uuid4().hex[:12]}",
        s3_access_key_id=_required_env("SOJOURN_TEST_S3_ACCESS_KEY_ID"),
        s3_secret_access_key=SecretStr(_required_env("SOJOURN_TEST_S3_SECRET_ACCESS_KEY")),
    )


async def create_database(admin_url: str) -> str:
    """A fresh, empty Postgres database; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin: AsyncEngine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def create_migrated_database(admin_url: str) -> str:
    """A fresh Postgres database at the newest migration; returns its URL."""
    url = await create_database(admin_url)
    await upgrade_async(url)
    return url


@pytest.fixture(scope="module")
async def database_url(postgres_admin_url: str) -> str:
    """A migrated Postgres database for one test module."""
    return await create_migrated_database(postgres_admin_url)


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def tiny_models() -> Iterator[object]:
    """Tiny random-weight models, built once and reused (same code path as real weights)."""
    # Rebuilt whenever the builder changes, so a stale cache never hides a change.
    import hashlib

    import inference.tiny_models as builder
    from inference.tiny_models import make_tiny_models
    from sojourn.settings import ModelPaths

    digest = hashlib.sha256(Path(builder.__file__).read_bytes()).hexdigest()[:16]
    marker = TINY_MODELS_CACHE / f"complete-{digest}"
    if marker.exists():
        yield ModelPaths.model_validate_json(marker.read_text())
        return
    paths = make_tiny_models(TINY_MODELS_CACHE)
    marker.write_text(paths.model_dump_json())
    yield paths


# One intra-op thread for the tests' workers: on a small machine shared with the test process,
# OpenMP's threads spin-wait on each other at every barrier, and a tiny render that takes 0.3 s on
# one thread took 10 s or more on two (measured on a loaded 2-core machine).
TEST_WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1"}


def start_test_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`sojourn.bootstrap.start_worker`, with the tests' worker environment."""
    with mock.patch.dict(os.environ, TEST_WORKER_ENVIRONMENT):
        return start_worker(settings)


@contextlib.contextmanager
def running_worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker child process, as `sojourn worker` runs it, ready for tasks."""
    process = start_test_worker(settings)
    try:
        try:
            wait_until_ready(settings, process)
        except RuntimeError as error:
            pytest.fail(str(error))
        yield process
    finally:
        stop_child(process, timeout=30)
        if os.environ.get("SOJOURN_SHOW_WORKER_LOG"):
            print(worker_log_path(settings).read_text(errors="replace"))


def worker_settings(
    database_url: str, redis_base_url: str, redis_db: int, data_dir: Path, models: object, **extra: object
) -> Settings:
    """Settings for a real worker on the tiny models, on a Redis database of its own (emptied)."""
    redis_url = redis_base_url.rsplit("/", 1)[0] + f"/{redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    values: dict[str, object] = {"preview_every": 5, **extra}
    return Settings(
        database_url=database_url, redis_url=redis_url, data_dir=data_dir, models=models, **values
    )
