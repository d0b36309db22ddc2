"""The worker scores every image it stores, the grid included, with the real safety check; and a
check that fails leaves every score None (could not check) without failing the job."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence

import pytest
from PIL import Image as PILImage

from db.models import JobStatus
from db.session import make_engine, make_sessionmaker
from inference.runner import JobRunner
from sojourn.events import JobEvent
from sojourn.services.workers import WorkerProcess
from sojourn.settings import ModerationSettings, Settings
from tests.conftest import create_migrated_database, running_worker, worker_settings
from tests.safety_images import opennsfw_checker
from tests.worker.test_worker import NotSent, images_of, submit, wait_for

REDIS_DB = 11


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("worker-data")
    return worker_settings(database_url, redis_base_url, REDIS_DB, data_dir, tiny_models)


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(settings) as process:
        yield process


class FailsToScore:
    """A plugged-in checker whose model breaks at every call."""

    def score(self, images: Sequence[PILImage.Image]) -> list[float]:
        raise RuntimeError("the plugged-in model crashed")


async def test_every_image_and_the_grid_get_the_real_models_score(sessions, settings, worker) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a lighthouse in a storm --seed 7 --q .25")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error

    images = await images_of(sessions, job.id)
    assert [image.index for image in images] == [0, 1, 2, 3, 4]
    grid, *four = images
    scores = [image.safety_score for image in four]
    assert all(score is not None and 0 <= score < 0.05 for score in scores), scores  # noise
    assert grid.safety_score == max(scores)  # type: ignore[type-var]
    # Each row's score is its own image's: the stored PNG, scored here, gets the same number.
    root = settings.resolved_storage_dir
    stored = [PILImage.open(root / image.storage_key).convert("RGB") for image in four]
    assert scores == pytest.approx(opennsfw_checker().score(stored), rel=1e-4)


async def test_a_failing_check_stores_none_for_every_image_and_the_job_succeeds(
    postgres_admin_url: str, settings: Settings
) -> None:
    # The worker's own runner, in this process, on a database of its own: no worker's recovery
    # sweep there to re-send the job that this test runs by hand.
    database_url = await create_migrated_database(postgres_admin_url)
    update = {
        "database_url": database_url,
        "redis_url": None,
        "moderation": ModerationSettings(safety_checker=f"{__name__}:FailsToScore"),
    }
    runner = JobRunner(
        settings.model_copy(update=update), WorkerProcess("safety-test", uuid.uuid4(), os.getpid())
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    job = await submit(sessions, runner.settings, "a red fox --seed 11 --q .25", queue=NotSent())
    assert await asyncio.to_thread(runner.run, job.id) == JobStatus.RUNNING  # being stored
    assert await asyncio.to_thread(runner.wait_stored) == JobStatus.SUCCEEDED
    assert isinstance(runner.safety_checker(), FailsToScore)  # loaded on first use
    assert runner.timings["safety"] < 1.0

    images = await images_of(sessions, job.id)
    await engine.dispose()
    assert [image.index for image in images] == [0, 1, 2, 3, 4]
    assert [image.safety_score for image in images] == [None] * 5


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    def publish(self, event: JobEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(
    ("threshold", "previews_shown"),
    [(ModerationSettings().safety_threshold, True), (0.0, False)],
    ids=["clean previews are shown", "previews over the threshold are withheld"],
)
async def test_progress_previews_are_screened_before_they_are_published(
    postgres_admin_url: str, settings: Settings, threshold: float, previews_shown: bool
) -> None:
    """A preview is posted while the job runs, before the result is screened: it is scored first."""
    database_url = await create_migrated_database(postgres_admin_url)
    update = {
        "database_url": database_url,
        "redis_url": None,
        "preview_every": 2,
        "moderation": ModerationSettings(safety_threshold=threshold),
    }
    runner = JobRunner(
        settings.model_copy(update=update), WorkerProcess("preview-test", uuid.uuid4(), os.getpid())
    )
    runner.publisher = RecordingPublisher()  # type: ignore[assignment]
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    job = await submit(sessions, runner.settings, "a red fox --seed 11 --q .25", queue=NotSent())
    assert await asyncio.to_thread(runner.run, job.id) == JobStatus.RUNNING  # being stored
    assert await asyncio.to_thread(runner.wait_stored) == JobStatus.SUCCEEDED
    await engine.dispose()

    progress = [event for event in runner.publisher.events if event.kind == "progress"]  # type: ignore[attr-defined]
    assert len(progress) > 2  # every step still reports its progress
    previews = [event for event in progress if event.preview_png_b64]
    assert bool(previews) is previews_shown
