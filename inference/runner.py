"""Runs one job inside a worker process: claim, render, store, settle — or fail and refund.

Everything here is per process and built once: settings, the database engine (on a private
event loop, since Celery tasks are synchronous), storage, the event publisher and the model
registry, whose pipelines `load_models` loads when the process starts (see `inference.tasks`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from db.models import Job, JobStatus
from db.session import make_engine, make_sessionmaker
from inference.errors import GpuOutOfMemory, JobCancelled
from inference.models import ModelRegistry
from inference.render import render_job_images
from sojourn.events import JobEvent, make_publisher
from sojourn.imaging import encode_png, render_grid
from sojourn.services import lifecycle
from sojourn.services.recovery import OUT_OF_TRIES
from sojourn.settings import Settings
from sojourn.spec import JobSpec
from sojourn.storage import LocalStorage, grid_key, image_key

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERNAL_ERROR = "the worker hit an internal error; your credits were refunded. Please try again."
TIMED_OUT = "the job took longer than this server allows; your credits were refunded."
PROGRESS_WRITE_INTERVAL = 1.0  # seconds between progress rows written (events go out every step)


class JobRunner:
    def __init__(self, settings: Settings, worker_node: str) -> None:
        self.settings = settings
        self.worker_node = worker_node
        self._loop = asyncio.new_event_loop()
        self._engine = make_engine(settings.resolved_database_url, pool_size=2)
        self.sessions = make_sessionmaker(self._engine)
        self.storage = LocalStorage(settings.resolved_storage_dir)
        self.publisher = make_publisher(settings.redis_url)
        self._encoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="png")
        self.registry = ModelRegistry(settings.models, settings.device, settings.dtype)
        self.timings: dict[str, float] = {}  # last job's phases, for the overhead benchmark

    def load_models(self) -> None:
        """Load what a text-to-image job needs (Stable unCLIP waits for the first Vary (Strong))."""
        started = time.perf_counter()
        self.registry.preload()
        self.timings["load"] = time.perf_counter() - started
        log.info("models loaded on %s in %.1f s", self.registry.device, self.timings["load"])

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def run(self, job_id: uuid.UUID) -> JobStatus | None:
        """Run the job if it still needs running; returns its final status (None if skipped)."""
        started = time.perf_counter()
        job = self._run(self._claim(job_id))
        if job is None:
            return None
        if job.attempts > self.settings.max_attempts:
            self._fail(job_id, OUT_OF_TRIES)
            return JobStatus.FAILED
        self.publisher.publish(JobEvent(job_id=str(job_id), kind="started"))
        try:
            status = self._render_and_store(job)
        except SoftTimeLimitExceeded:
            self._fail(job_id, TIMED_OUT)
            status = JobStatus.FAILED
        except JobCancelled:
            status = JobStatus.CANCELLED
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="cancelled"))
        except GpuOutOfMemory as error:
            self._fail(job_id, f"{error.message}; your credits were refunded")
            status = JobStatus.FAILED
        except Exception:
            log.exception("job %s failed", job_id)
            self._fail(job_id, INTERNAL_ERROR)
            status = JobStatus.FAILED
        self.timings["total"] = time.perf_counter() - started
        return status

    async def _claim(self, job_id: uuid.UUID) -> Job | None:
        stale_after = dt.timedelta(seconds=self.settings.recovery.takeover_after)
        async with self.sessions.begin() as session:
            return await lifecycle.claim_job(session, job_id, self.worker_node, stale_after=stale_after)

    def _fail(self, job_id: uuid.UUID, message: str) -> None:
        async def fail() -> bool:
            async with self.sessions.begin() as session:
                return await lifecycle.fail_job(session, job_id, message)

        if self._run(fail()):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="failed", error=message))

    def _render_and_store(self, job: Job) -> JobStatus:
        spec = JobSpec.model_validate(job.spec)
        init_image = self._image_prompt(spec)
        source_image = self._source_image(spec)
        progress = _ProgressReporter(self, job.id)
        pipeline_started = time.perf_counter()
        images = render_job_images(
            self.registry,
            spec,
            on_progress=progress.report,
            is_cancelled=progress.is_cancelled,
            preview_every=self.settings.preview_every,
            init_image=init_image,
            source_image=source_image,
        )
        # Our own progress callbacks run inside the pipeline call; count them as overhead.
        self.timings["progress"] = progress.seconds
        self.timings["pipeline"] = time.perf_counter() - pipeline_started - progress.seconds

        stored_started = time.perf_counter()
        stored = self._store(job, spec, images)
        self.timings["store"] = time.perf_counter() - stored_started
        finish_started = time.perf_counter()
        status = self._finish(job.id, stored)
        self.timings["finish"] = time.perf_counter() - finish_started
        return status

    def _image_prompt(self, spec: JobSpec) -> Image.Image | None:
        """The job's image prompt from storage, decoded (the bot validated it before submitting)."""
        if spec.image_key is None:
            return None
        return self._load_image(spec.image_key)

    def _source_image(self, spec: JobSpec) -> Image.Image | None:
        """A derived job's source (the full-resolution PNG its button was under), decoded."""
        if spec.source is None:
            return None
        return self._load_image(spec.source.key)

    def _load_image(self, key: str) -> Image.Image:
        with Image.open(io.BytesIO(self.storage.get(key))) as image:
            return image.convert("RGB")

    def _store(self, job: Job, spec: JobSpec, images: list[Image.Image]) -> list[lifecycle.StoredImage]:
        seeds = spec.image_seeds()
        metadata = {"job_id": str(job.id), "spec": job.spec}

        def save(index: int, image: Image.Image, key: str, seed: int | None) -> lifecycle.StoredImage:
            data = encode_png(
                image, parameters=job.prompt, metadata={**metadata, "index": index, "seed": seed}
            )
            self.storage.put(key, data)
            return lifecycle.StoredImage(
                index=index,
                seed=seed if seed is not None else seeds[0],
                width=image.width,
                height=image.height,
                storage_key=key,
            )

        tasks: list[tuple[int, Image.Image, str, int | None]] = [
            (i + 1, image, image_key(job.id, i + 1), seeds[i]) for i, image in enumerate(images)
        ]
        if spec.images > 1:  # a single image (an upscale) is shown as it is, with no grid
            tasks.append((0, render_grid(images), grid_key(job.id), None))
        # zlib releases the GIL: the five PNGs encode in parallel.
        return list(self._encoder.map(lambda task: save(*task), tasks))

    def _finish(self, job_id: uuid.UUID, stored: list[lifecycle.StoredImage]) -> JobStatus:
        async def complete() -> bool:
            async with self.sessions.begin() as session:
                return await lifecycle.complete_job(session, job_id, self.worker_node, stored)

        if self._run(complete()):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="succeeded", percent=100))
            return JobStatus.SUCCEEDED
        # Cancelled while rendering: the cancel already refunded; the files are harmless.
        return JobStatus.CANCELLED


class _ProgressReporter:
    """Publishes every step; writes progress + heartbeat to the database at most once a second."""

    def __init__(self, runner: JobRunner, job_id: uuid.UUID) -> None:
        self.runner = runner
        self.job_id = job_id
        self._last_write = 0.0
        self._cancelled = False
        self.seconds = 0.0  # time spent in here, for the overhead benchmark

    def report(self, percent: int, preview_png: bytes | None) -> None:
        started = time.perf_counter()
        try:
            self._report(percent, preview_png)
        finally:
            self.seconds += time.perf_counter() - started

    def _report(self, percent: int, preview_png: bytes | None) -> None:
        self.runner.publisher.publish(JobEvent.progress(str(self.job_id), percent, preview_png))
        now = time.monotonic()
        if now - self._last_write < PROGRESS_WRITE_INTERVAL and percent < 100:
            return
        self._last_write = now

        async def write() -> JobStatus | None:
            async with self.runner.sessions.begin() as session:
                return await lifecycle.record_progress(session, self.job_id, self.runner.worker_node, percent)

        status = self.runner._run(write())
        if status != JobStatus.RUNNING:
            self._cancelled = True

    def is_cancelled(self) -> bool:
        return self._cancelled
