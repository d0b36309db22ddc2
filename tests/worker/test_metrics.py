"""A real worker's `/metrics`: its pool processes' render seconds, served by its main process."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import JobStatus
from sojourn.settings import MetricsSettings, Settings
from tests.conftest import running_worker, worker_settings
from tests.scrape import free_port, names, scrape, value
from tests.worker.test_worker import submit, wait_for

REDIS_DB = 12


@pytest.fixture(scope="module")
def settings(database_url, redis_base_url, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("metrics-worker-data")
    metrics = MetricsSettings(worker_port=free_port())
    return worker_settings(database_url, redis_base_url, REDIS_DB, data_dir, tiny_models, metrics=metrics)


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(settings) as process:
        yield process


async def test_a_succeeded_render_is_timed_by_its_action(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    port = settings.metrics.worker_port
    assert port is not None
    before = await asyncio.to_thread(scrape, port)
    assert value(before, "sojourn_render_seconds_count", action="imagine") in (None, 0.0)

    job = await submit(sessions, settings, "a lighthouse --seed 5")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error

    samples = await asyncio.to_thread(scrape, port)
    assert value(samples, "sojourn_render_seconds_count", action="imagine") == 1
    seconds = value(samples, "sojourn_render_seconds_sum", action="imagine")
    assert seconds is not None and 0 < seconds < 120
    assert value(samples, "sojourn_render_seconds_bucket", action="imagine", le="+Inf") == 1
    # The cluster's numbers are the bot's to serve: a worker's are its own.
    assert not {"sojourn_jobs", "sojourn_queue_depth"} & names(samples)
