"""The worker stores a job's images while it renders the next (issue 13 §3), on a real Celery
worker with real Postgres and Redis: "succeeded" still means "stored", a storage failure still
fails and refunds, and a warm shutdown finishes storing the job it holds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Image, Job, JobStatus, LedgerKind
from db.session import make_engine, make_sessionmaker
from sojourn.bootstrap import worker_log_path
from sojourn.celery_app import make_celery
from sojourn.queue import RENDER_TASK, CeleryJobQueue
from sojourn.services.submission import enqueue_jobs
from sojourn.settings import Settings
from sojourn.storage import thumbnail_key
from tests.conftest import create_migrated_database, running_worker, worker_settings
from tests.held_settlement import HeldSettlement
from tests.worker.test_worker import JOB_TIMEOUT, NotSent, images_of, ledger_kinds, submit, wait_for

REDIS_DB = 15
SHUTDOWN_REDIS_DB = 5  # the shutdown test's own worker must not share the module worker's queue


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("background-store")
    return worker_settings(database_url, redis_base_url, REDIS_DB, data_dir, tiny_models)


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[object]:
    with running_worker(settings) as process:
        yield process


def missing_files(root: Path, job: Job, images: list[Image]) -> list[str]:
    """The files a succeeded job's rows name (and its gallery thumbnail) that are not in storage."""
    keys = [image.storage_key for image in images]
    keys.append(thumbnail_key(next(i.storage_key for i in images if i.index == 0)))
    return [key for key in keys if not (root / key).is_file()]


async def test_every_job_of_a_burst_has_all_its_files_when_it_is_seen_succeeded(
    sessions, settings, worker
) -> None:  # type: ignore[no-untyped-def]
    jobs = [await submit(sessions, settings, f"a lighthouse, take {i} --q .25 --seed {i}") for i in range(4)]
    pending = {job.id for job in jobs}
    root = settings.resolved_storage_dir
    deadline = asyncio.get_running_loop().time() + JOB_TIMEOUT * len(jobs)
    while pending:  # look at each job the moment it is first seen succeeded
        async with sessions() as session:
            rows = (await session.scalars(select(Job).where(Job.id.in_(pending)))).all()
            for job in rows:
                if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                    continue
                assert job.status == JobStatus.SUCCEEDED, job.error
                images = list((await session.scalars(select(Image).where(Image.job_id == job.id))).all())
                assert sorted(i.index for i in images) == [0, 1, 2, 3, 4]
                assert missing_files(root, job, images) == []
                pending.discard(job.id)
        assert asyncio.get_running_loop().time() < deadline, f"still not ended: {pending}"
        await asyncio.sleep(0.02)


async def test_a_storage_failure_in_the_background_fails_and_refunds(sessions, settings, worker) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a lighthouse on a broken disk --q .25", queue=NotSent())
    # A file where the job's folder should be: every write of its images fails (an OSError).
    (settings.resolved_storage_dir / "jobs").mkdir(parents=True, exist_ok=True)
    (settings.resolved_storage_dir / "jobs" / str(job.id)).write_bytes(b"in the way")
    make_celery(settings).send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    failed = await wait_for(sessions, job.id)
    assert failed.status == JobStatus.FAILED and failed.attempts == 1
    assert "could not save the images" in (failed.error or "") and "refunded" in (failed.error or "")
    assert await images_of(sessions, job.id) == []
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.REFUND]

    after = await submit(sessions, settings, "a lighthouse on a good disk --q .25")
    assert (await wait_for(sessions, after.id)).status == JobStatus.SUCCEEDED


async def test_a_warm_shutdown_finishes_storing_the_job_first(
    postgres_admin_url, redis_base_url, tiny_models, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    # A worker of its own, stopped by the test, on a database of its own.
    database_url = await create_migrated_database(postgres_admin_url)
    settings = worker_settings(database_url, redis_base_url, SHUTDOWN_REDIS_DB, tmp_path, tiny_models)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    job = await submit(sessions, settings, "a lighthouse at closing time --q .25", queue=NotSent())
    held = HeldSettlement(engine, job.user_id)
    log = worker_log_path(settings)
    try:
        with running_worker(settings) as process:
            await held.hold()
            # Sent as the bot sends it, so the recovery sweep sends no second message of its own.
            await enqueue_jobs(sessions, CeleryJobQueue(make_celery(settings)), [job])
            # The images are written and the task has returned; the success waits for us.
            await held.wait_until_waited_on()
            process.terminate()  # a warm shutdown
            await wait_for_log(log, f"job {job.id}: storing its images before this worker process exits")
            await held.release()
            assert await asyncio.to_thread(process.wait, JOB_TIMEOUT) == 0
        done = await wait_for(sessions, job.id)
        assert done.status == JobStatus.SUCCEEDED and done.attempts == 1
        images = await images_of(sessions, job.id)
        assert missing_files(settings.resolved_storage_dir, done, images) == []
        assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]
    finally:
        await held.release()
        await engine.dispose()


async def wait_for_log(path: Path, line: str) -> None:
    deadline = asyncio.get_running_loop().time() + JOB_TIMEOUT
    while line not in log_text(path):
        assert asyncio.get_running_loop().time() < deadline, (
            f"no {line!r} in the worker's log:\n" + (log_text(path)[-4000:])
        )
        await asyncio.sleep(0.05)


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
