"""Derived jobs (the buttons' upscale and variations) through a real Celery worker on tiny models."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from PIL import Image as PILImage

from db.models import Job, JobStatus, LedgerKind
from sojourn.actions import UPSCALE, VARY_SUBTLE, ButtonAction
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue
from sojourn.services.submission import Origin, enqueue_jobs, hold_and_insert, new_job
from sojourn.settings import Settings
from sojourn.spec import JobSpec, SourceImage
from sojourn.storage import thumbnail_key
from tests.conftest import running_worker, worker_settings
from tests.worker.test_worker import images_of, ledger_kinds, submit, wait_for


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("worker-data")
    return worker_settings(database_url, redis_base_url, 8, data_dir, tiny_models)


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(settings) as process:
        yield process


@pytest.fixture(scope="module")
async def parent(sessions, settings, worker) -> Job:  # type: ignore[no-untyped-def]
    """A finished /imagine grid for the buttons to work on (a quarter of the steps: fast)."""
    job = await submit(sessions, settings, "a lighthouse in a storm --seed 7 --q .25")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    return done


async def submit_derived(sessions, settings, parent: Job, action: ButtonAction, **update: object) -> Job:  # type: ignore[no-untyped-def]
    """Insert and enqueue a derived job from image 2 of `parent`, as a button press would."""
    image = next(i for i in await images_of(sessions, parent.id) if i.index == 2)
    source = SourceImage(
        job_id=str(parent.id),
        index=2,
        key=image.storage_key,
        width=image.width,
        height=image.height,
        seed=image.seed,
    )
    fields = {"source": source, "repeat": 1, "action": action.render, **update}
    spec = JobSpec.model_validate(parent.spec).model_copy(update=fields)
    assert action.kind is not None
    job = new_job(
        parent.user_id,
        action.kind,
        spec,
        2,
        Origin(),
        parent_job_id=parent.id,
        parent_image_index=2,
        action=action.code,
    )
    async with sessions.begin() as session:
        await hold_and_insert(session, settings, parent.user_id, [job])
    await enqueue_jobs(sessions, CeleryJobQueue(make_celery(settings)), [job])
    return job


async def test_an_upscale_stores_one_image_at_twice_the_size(sessions, settings, parent) -> None:  # type: ignore[no-untyped-def]
    source = next(i for i in await images_of(sessions, parent.id) if i.index == 2)
    job = await submit_derived(
        sessions,
        settings,
        parent,
        UPSCALE,
        width=source.width * 2,
        height=source.height * 2,
        images=1,
        strength=0.3,
        seed=source.seed,
    )
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error

    images = await images_of(sessions, job.id)
    assert [(i.index, i.seed, i.width, i.height) for i in images] == [
        (1, source.seed, source.width * 2, source.height * 2)
    ]  # no grid for a single image
    png = PILImage.open(settings.resolved_storage_dir / images[0].storage_key)
    assert png.format == "PNG" and png.size == (2048, 2048)
    thumbnail = PILImage.open(settings.resolved_storage_dir / thumbnail_key(images[0].storage_key))
    assert thumbnail.format == "WEBP" and thumbnail.size == (384, 384)  # the web gallery's tile
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]


async def test_a_subtle_variation_stores_four_images_and_a_grid(sessions, settings, parent) -> None:  # type: ignore[no-untyped-def]
    job = await submit_derived(sessions, settings, parent, VARY_SUBTLE, strength=0.35, seed=100)
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error

    images = await images_of(sessions, job.id)
    assert [i.index for i in images] == [0, 1, 2, 3, 4]
    assert [i.seed for i in images[1:]] == [100, 101, 102, 103]
    for image in images:
        png = PILImage.open(settings.resolved_storage_dir / image.storage_key)
        assert png.format == "PNG" and png.size == (1024, 1024) == (image.width, image.height)
    # The gallery shows the grid: its thumbnail, and none of the four images'.
    thumbnails = [(settings.resolved_storage_dir / thumbnail_key(i.storage_key)).is_file() for i in images]
    assert thumbnails == [True, False, False, False, False]
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]
