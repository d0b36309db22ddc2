"""Runs one job inside a worker process: claim, render, store, settle — or fail and refund.

Everything here is per process and built once: settings, the database engine (on a private
event loop, since Celery tasks are synchronous), storage, the event publisher, the model
registry, whose pipelines `load_models` loads when the process starts (see `inference.tasks`), and
the image safety check, which scores every rendered image before it is stored.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image
from sqlalchemy.exc import DBAPIError

from db.models import Job, JobStatus
from db.session import make_engine, make_sessionmaker
from inference.errors import GpuOutOfMemory, JobCancelled, StorageWriteFailed
from inference.models import ModelRegistry
from inference.render import render_job_images
from inference.safety import SafetyChecker, combined_score, load_safety_checker, score_images
from sojourn.celery_app import make_celery
from sojourn.events import JobEvent, make_publisher
from sojourn.imaging import encode_png, encode_thumbnail, render_grid
from sojourn.metrics import observe_render
from sojourn.queue import CeleryJobQueue, JobQueue
from sojourn.services import fair_share, lifecycle
from sojourn.services.moderation import review
from sojourn.services.recovery import OUT_OF_TRIES
from sojourn.services.results import shown_index_of
from sojourn.services.submission import enqueue_jobs
from sojourn.services.workers import WorkerProcess
from sojourn.settings import Settings
from sojourn.spec import JobSpec
from sojourn.storage import grid_key, image_key, make_storage, thumbnail_key

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERNAL_ERROR = "the worker hit an internal error; your credits were refunded. Please try again."
STORAGE_FAILED = (
    "the server could not save the images (its disk is full or not writable); your credits were "
    "refunded. Please tell the server's operator, then try again."
)
# How long a worker waits for the database to come back (a restart, a failover) before it gives up
# on a write; the recovery sweep picks up whatever is left.
DATABASE_PATIENCE = 120.0
TIMED_OUT = "the job took longer than this server allows; your credits were refunded."
PROGRESS_WRITE_INTERVAL = 1.0  # seconds between progress rows written (events go out every step)


class JobRunner:
    def __init__(self, settings: Settings, worker: WorkerProcess) -> None:
        self.settings = settings
        self.worker = worker
        self._loop = asyncio.new_event_loop()
        self._engine = make_engine(settings.resolved_database_url, pool_size=2)
        self.sessions = make_sessionmaker(self._engine)
        self.storage = make_storage(settings)
        self.publisher = make_publisher(settings.redis_url)
        self._encoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="png")
        self.registry = ModelRegistry(settings.models, settings.device, settings.dtype)
        self._safety_checker: SafetyChecker | None = None
        self.timings: dict[str, float] = {}  # last job's phases, for the overhead benchmark

    def load_models(self) -> None:
        """Load what a text-to-image job needs (Stable unCLIP waits for the first Vary (Strong)),
        and the image safety check."""
        started = time.perf_counter()
        self.registry.preload()
        self.timings["load"] = time.perf_counter() - started
        log.info("models loaded on %s in %.1f s", self.registry.device, self.timings["load"])
        self.safety_checker()

    def safety_checker(self) -> SafetyChecker:
        """This process's image safety check, loaded once (by `load_models`, or by the first job)."""
        if self._safety_checker is None:
            name = self.settings.moderation.safety_checker
            started = time.perf_counter()
            self._safety_checker = load_safety_checker(name)
            log.info("image safety check %r ready in %.2f s", name, time.perf_counter() - started)
        return self._safety_checker

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def _with_database(self, step: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a database step, again and again while the database is unreachable (up to
        `DATABASE_PATIENCE`): every step here is a conditional write, safe to repeat."""
        deadline = time.monotonic() + DATABASE_PATIENCE
        delay = 0.25
        while True:
            try:
                return self._run(step())
            except (DBAPIError, OSError) as error:
                if time.monotonic() + delay > deadline:
                    raise
                if delay == 0.25:  # one line per outage
                    log.warning("the database is unreachable (%s); retrying until it answers", error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def run(self, job_id: uuid.UUID, dispatch: int | None = None) -> JobStatus | None:
        """Run the job if this message still needs running; returns its final status (None if skipped)."""
        started = time.perf_counter()
        job = self._with_database(lambda: self._claim(job_id, dispatch))
        if job is None:
            return None
        if job.attempts > self.settings.max_attempts:
            self._fail(job_id, OUT_OF_TRIES)
            return JobStatus.FAILED
        claimed = time.perf_counter()
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
        except StorageWriteFailed:
            log.exception("job %s: the images could not be saved", job_id)
            self._fail(job_id, STORAGE_FAILED)
            status = JobStatus.FAILED
        except Exception:
            log.exception("job %s failed", job_id)
            self._fail(job_id, INTERNAL_ERROR)
            status = JobStatus.FAILED
        self.timings["total"] = time.perf_counter() - started
        if status == JobStatus.SUCCEEDED:
            observe_render(job.spec.get("action"), time.perf_counter() - claimed)
        return status

    async def _claim(self, job_id: uuid.UUID, dispatch: int | None) -> Job | None:
        # A relax message runs the job next in line (`fair_share`); its own job gets a new message.
        async with self.sessions.begin() as session:
            turn = await fair_share.claim_turn(
                session, job_id, self.worker, self.settings.recovery, dispatch=dispatch
            )
        if turn.resend is not None:
            await enqueue_jobs(self.sessions, self.queue, [turn.resend])
        return turn.job

    @functools.cached_property
    def queue(self) -> JobQueue:
        """Where a relax job whose message ran another job is sent again."""
        return CeleryJobQueue(make_celery(self.settings))

    def _fail(self, job_id: uuid.UUID, message: str) -> None:
        async def fail() -> bool:
            async with self.sessions.begin() as session:
                return await lifecycle.fail_job(session, job_id, message)

        if self._with_database(fail):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="failed", error=message))

    def _render_and_store(self, job: Job) -> JobStatus:
        spec = JobSpec.model_validate(job.spec)
        safety_checker = self.safety_checker()  # before rendering: a misnamed checker fails the job early
        init_image = self._image_prompt(spec)
        source_image = self._source_image(spec)
        progress = _ProgressReporter(self, job.id, job.attempts, self._preview_gate(job, safety_checker))
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

        safety_started = time.perf_counter()
        scores = score_images(safety_checker, images)
        self.timings["safety"] = time.perf_counter() - safety_started

        stored_started = time.perf_counter()
        try:
            stored = self._store(job, spec, images, scores)
        except OSError as error:
            raise StorageWriteFailed from error
        self.timings["store"] = time.perf_counter() - stored_started
        finish_started = time.perf_counter()
        status = self._finish(job.id, job.attempts, stored)
        self.timings["finish"] = time.perf_counter() - finish_started
        return status

    def _preview_gate(self, job: Job, checker: SafetyChecker) -> Callable[[bytes], bool]:
        """Whether a progress preview may be shown: scored like the result, since it is posted
        before the result is screened; one the check cannot score is withheld."""

        async def threshold() -> float | None:
            async with self.sessions() as session:
                return await review.preview_threshold(session, self.settings.moderation, job)

        try:
            limit = self._run(threshold())
        except (DBAPIError, OSError):
            limit = self.settings.moderation.safety_threshold  # the default's, rather than none
        if limit is None:
            return lambda preview: True

        def may_show(preview: bytes) -> bool:
            with Image.open(io.BytesIO(preview)) as image:
                (score,) = score_images(checker, [image.convert("RGB")])
            return score is not None and score < limit

        return may_show

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

    def _store(
        self, job: Job, spec: JobSpec, images: list[Image.Image], scores: list[float | None]
    ) -> list[lifecycle.StoredImage]:
        seeds = spec.image_seeds()
        metadata = {"job_id": str(job.id), "spec": job.spec}
        shown = shown_index_of(job)  # the image whose thumbnail the web gallery shows

        def save(
            index: int, image: Image.Image, key: str, seed: int | None, score: float | None
        ) -> lifecycle.StoredImage:
            data = encode_png(
                image, parameters=job.prompt, metadata={**metadata, "index": index, "seed": seed}
            )
            self.storage.put(key, data)
            if index == shown:  # the web gallery's tile, written before the job can be seen
                self.storage.put(thumbnail_key(key), encode_thumbnail(image))
            return lifecycle.StoredImage(
                index=index,
                seed=seed if seed is not None else seeds[0],
                width=image.width,
                height=image.height,
                storage_key=key,
                safety_score=score,
            )

        tasks: list[tuple[int, Image.Image, str, int | None, float | None]] = [
            (i + 1, image, image_key(job.id, i + 1), seeds[i], scores[i]) for i, image in enumerate(images)
        ]
        if spec.images > 1:
            tasks.append((0, render_grid(images), grid_key(job.id), None, combined_score(scores)))
        # zlib releases the GIL: the five PNGs encode in parallel.
        return list(self._encoder.map(lambda task: save(*task), tasks))

    def _finish(self, job_id: uuid.UUID, attempt: int, stored: list[lifecycle.StoredImage]) -> JobStatus:
        async def complete() -> bool:
            async with self.sessions.begin() as session:
                completed = await lifecycle.complete_job(session, job_id, attempt, stored)
                if completed:  # held (or removed) in the same transaction: never seen before decided
                    await review.screen_result(session, self.settings.moderation, job_id)
                return completed

        if self._with_database(complete):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="succeeded", percent=100))
            return JobStatus.SUCCEEDED
        # Cancelled (the cancel already refunded) or taken over while rendering: the files are harmless.
        return JobStatus.CANCELLED


class _ProgressReporter:
    """Publishes every step; writes progress + heartbeat to the database at most once a second."""

    def __init__(
        self, runner: JobRunner, job_id: uuid.UUID, attempt: int, may_show: Callable[[bytes], bool]
    ) -> None:
        self.runner = runner
        self.may_show = may_show
        self.job_id = job_id
        self.attempt = attempt
        self._last_write = 0.0
        self._database_failing = False
        self._cancelled = False
        self.seconds = 0.0  # time spent in here, for the overhead benchmark

    def report(self, percent: int, preview_png: bytes | None) -> None:
        started = time.perf_counter()
        try:
            self._report(percent, preview_png)
        finally:
            self.seconds += time.perf_counter() - started

    def _report(self, percent: int, preview_png: bytes | None) -> None:
        if preview_png is not None and not self.may_show(preview_png):
            preview_png = None  # the progress still shows, without the picture
        self.runner.publisher.publish(JobEvent.progress(str(self.job_id), percent, preview_png))
        now = time.monotonic()
        if now - self._last_write < PROGRESS_WRITE_INTERVAL and percent < 100:
            return
        self._last_write = now

        async def write() -> JobStatus | None:
            async with self.runner.sessions.begin() as session:
                return await lifecycle.record_progress(session, self.job_id, self.attempt, percent)

        try:
            status = self.runner._run(write())
        except (DBAPIError, OSError) as error:
            # A heartbeat is not worth stopping the render for: the result is written (with
            # retries) when it is done, and a long outage is the recovery sweep's to judge.
            if not self._database_failing:
                self._database_failing = True
                log.warning("job %s: cannot write progress (%s); rendering on", self.job_id, error)
            return
        self._database_failing = False
        if status != JobStatus.RUNNING:
            self._cancelled = True

    def is_cancelled(self) -> bool:
        return self._cancelled
