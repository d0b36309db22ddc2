"""Relax jobs by recent use, through a real worker: one member queues 50 relax jobs, another
member's one job, queued after all of them, runs next."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from db.models import Job
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue
from sojourn.services.submission import submit_prompt
from sojourn.settings import Credits, Limits, Settings
from tests.conftest import running_worker, worker_settings
from tests.worker.test_worker import wait_for

REDIS_DB = 10
HEAVY_JOBS = 50


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    return worker_settings(
        database_url,
        redis_base_url,
        REDIS_DB,
        tmp_path_factory.mktemp("fair-share"),
        tiny_models,
        limits=Limits(max_queued_per_user=HEAVY_JOBS + 5),
        credits=Credits(daily_free=1000),
    )


async def test_a_members_fifty_relax_jobs_do_not_starve_anothers_one(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    queue = CeleryJobQueue(make_celery(settings))
    heavy, light = (int(uuid.uuid4().int % 10**12) for _ in range(2))
    # Queued while no worker runs: the broker holds the heavy member's 50 messages first.
    heavy_jobs = [
        (await submit_prompt(sessions, settings, queue, user_id=heavy, text=f"a cat {n} --relax --ar 1:1"))[0]
        for n in range(HEAVY_JOBS)
    ]
    (light_job,) = await submit_prompt(
        sessions, settings, queue, user_id=light, text="a dog --relax --ar 1:1"
    )

    with running_worker(settings):
        done = await wait_for(sessions, light_job.id)
    assert done.started_at is not None, done.error

    async with sessions() as session:
        started = (
            await session.scalars(
                select(Job.started_at).where(
                    Job.id.in_([job.id for job in heavy_jobs]), Job.started_at < done.started_at
                )
            )
        ).all()
    # The first heavy job ran first (nobody had used anything yet); the light one came next.
    assert len(started) == 1
