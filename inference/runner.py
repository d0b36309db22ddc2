"""Runs one job inside a worker process: claim, render, store, settle — or fail and refund.

Everything here is per process and built once: settings, the database engine (on a private
event loop, since Celery tasks are synchronous), storage, the event publisher, the model
registry, whose pipelines `load_models` loads when the process starts (see `inference.tasks`), and
the image safety check, which scores every rendered image before it is stored.

Once a job's images are rendered and scored, one background thread of the runner encodes and
stores them and ends the job, while the task returns and the worker renders the next job: the
GPU does not wait for PNG encoding. The job stays RUNNING until its files are written and its
success committed, so "succeeded" still means "stored"; a process that dies meanwhile leaves it
RUNNING, for the recovery sweep to run again. At most one job waits there (`_hand_off`), and the
worker process drains it before it exits (`close`, from `inference.tasks`).
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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


class _Database:
    """An engine on an event loop of its own, for one thread: asyncpg connections belong to the
    loop that opened them, and Celery tasks are synchronous."""

    def __init__(self, url: str, pool_size: int) -> None:
        self._loop = asyncio.new_event_loop()
        self.sessions = make_sessionmaker(make_engine(url, pool_size=pool_size))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def run_patiently(self, step: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a database step, again and again while the database is unreachable (up to
        `DATABASE_PATIENCE`): every step here is a conditional write, safe to repeat."""
        deadline = time.monotonic() + DATABASE_PATIENCE
        delay = 0.25
        while True:
            try:
                return self.run(step())
            except (DBAPIError, OSError) as error:
                if time.monotonic() + delay > deadline:
                    raise
                if delay == 0.25:  # one line per outage
                    log.warning("the database is unreachable (%s); retrying until it answers", error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


@dataclass
class _Rendered:
    """A job whose images are rendered, on its way to the safety check and storage."""

    job: Job
    spec: JobSpec
    images: list[Image.Image]
    checker: SafetyChecker
    claimed: float  # perf_counter at the claim, for the render-time metric
    timings: dict[str, float]


class JobRunner:
    def __init__(self, settings: Settings, worker: WorkerProcess) -> None:
        self.settings = settings
        self.worker = worker
        self._database = _Database(settings.resolved_database_url, pool_size=2)
        self.sessions = self._database.sessions
        self.storage = make_storage(settings)
        self.publisher = make_publisher(settings.redis_url)
        self._encoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="png")
        # Scores previews and publishes progress events, in order, off the pipeline's thread.
        self.previews = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        # The thread that stores rendered jobs and ends them, one at a time, with its own database.
        self._storer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._storer_database = _Database(settings.resolved_database_url, pool_size=1)
        self._storing: tuple[uuid.UUID, Future[JobStatus]] | None = None  # the latest job handed off
        self.registry = ModelRegistry(settings.models, settings.device, settings.dtype, settings.performance)
        self._safety_checker: SafetyChecker | None = None
        self._scoring = threading.Lock()  # see `_score`
        # The latest job's phases in seconds, for the overhead benchmark (the storing thread adds
        # "store" and "finish" when it is done); `*_at` entries are perf_counter instants.
        self.timings: dict[str, float] = {}

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

    def run(self, job_id: uuid.UUID, dispatch: int | None = None) -> JobStatus | None:
        """Run the job if this message still needs running (None if skipped); returns its status:
        final, or RUNNING while its images are stored in the background (see `wait_stored`)."""
        if self._storing is not None and self._storing[0] == job_id:
            # Another message of the job being stored: let it end first, so the claim sees it
            # ended rather than running in this very process (which would read as a crash).
            self.wait_stored()
        started = time.perf_counter()
        timings: dict[str, float] = {}
        self.timings = timings
        job = self._database.run_patiently(lambda: self._claim(job_id, dispatch))
        if job is None:
            return None
        if job.attempts > self.settings.max_attempts:
            self._fail(self._database, job_id, OUT_OF_TRIES)
            return JobStatus.FAILED
        claimed = time.perf_counter()
        self.publisher.publish(JobEvent(job_id=str(job_id), kind="started"))
        try:
            self._hand_off(self._render(job, claimed, timings))
            status = JobStatus.RUNNING
        except Exception as error:
            status = self._end_failed(self._database, job_id, error)
        timings["total"] = time.perf_counter() - started
        return status

    def wait_stored(self) -> JobStatus | None:
        """Wait until the latest job handed to the background is stored and ended; its final
        status (RUNNING if it could not be ended: the recovery sweep will run it again)."""
        return self._storing[1].result() if self._storing is not None else None

    def close(self) -> None:
        """Store and end the job in the background, if any, then stop (the process is exiting)."""
        if self._storing is not None and not self._storing[1].done():
            log.warning("job %s: storing its images before this worker process exits", self._storing[0])
        self._storer.shutdown(wait=True)
        self.previews.shutdown(wait=True)
        self._encoder.shutdown(wait=True)

    def _end_failed(self, database: _Database, job_id: uuid.UUID, error: Exception) -> JobStatus:
        """End a job that raised `error`: cancelled, or failed with a refund and a message that
        says why (a time limit, the GPU's memory, the storage, anything else)."""
        if isinstance(error, JobCancelled):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="cancelled"))
            return JobStatus.CANCELLED
        if isinstance(error, SoftTimeLimitExceeded):
            message = TIMED_OUT
        elif isinstance(error, GpuOutOfMemory):
            message = f"{error.message}; your credits were refunded"
        elif isinstance(error, StorageWriteFailed):
            log.error("job %s: the images could not be saved", job_id, exc_info=error)
            message = STORAGE_FAILED
        else:
            log.error("job %s failed", job_id, exc_info=error)
            message = INTERNAL_ERROR
        self._fail(database, job_id, message)
        return JobStatus.FAILED

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

    def _fail(self, database: _Database, job_id: uuid.UUID, message: str) -> None:
        async def fail() -> bool:
            async with database.sessions.begin() as session:
                return await lifecycle.fail_job(session, job_id, message)

        if database.run_patiently(fail):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="failed", error=message))

    def _render(self, job: Job, claimed: float, timings: dict[str, float]) -> _Rendered:
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
        pipeline_ended = time.perf_counter()
        # Our own progress callbacks run inside the pipeline call; count them as overhead.
        timings["progress"] = progress.seconds
        timings["pipeline"] = pipeline_ended - pipeline_started - progress.seconds
        timings["pipeline_started_at"], timings["pipeline_ended_at"] = pipeline_started, pipeline_ended
        return _Rendered(job, spec, images, safety_checker, claimed, timings)

    def _hand_off(self, rendered: _Rendered) -> None:
        """Give the job to the storing thread, once the one before it is stored: at most one job's
        images wait in memory. A job waits there seconds at most, far less than its heartbeat
        takes to go stale (`RecoverySettings.takeover_after`), as it did while stored in line."""
        waited = time.perf_counter()
        self.wait_stored()
        rendered.timings["hand_off"] = time.perf_counter() - waited
        self._storing = (rendered.job.id, self._storer.submit(self._store_and_end, rendered))

    def _store_and_end(self, rendered: _Rendered) -> JobStatus:
        """On the storing thread: score the images, write the files, then record the success (or
        fail and refund). The scores are written with the images and screen the result."""
        job, timings, database = rendered.job, rendered.timings, self._storer_database
        try:
            try:
                safety_started = time.perf_counter()
                scores = self._score(rendered.checker, rendered.images)
                timings["safety"] = time.perf_counter() - safety_started
                stored_started = time.perf_counter()
                stored = self._store(job, rendered.spec, rendered.images, scores)
                timings["store"] = time.perf_counter() - stored_started
                finish_started = time.perf_counter()
                status = self._finish(database, job.id, job.attempts, stored)
                timings["finish"] = time.perf_counter() - finish_started
            except Exception as error:
                status = self._end_failed(database, job.id, error)
        except Exception:  # the database stayed away: the job is still RUNNING, for the sweep
            log.exception("job %s: could not be ended; the recovery sweep will run it again", job.id)
            return JobStatus.RUNNING
        timings["ended_at"] = time.perf_counter()
        if status == JobStatus.SUCCEEDED:
            observe_render(job.spec.get("action"), timings["ended_at"] - rendered.claimed)
        return status

    def _score(self, checker: SafetyChecker, images: list[Image.Image]) -> list[float | None]:
        """The safety check's scores, one caller at a time: the storing thread scores a result
        while the next job's previews are scored, and a plugged-in check need not be thread-safe."""
        with self._scoring:
            return score_images(checker, images)

    def _preview_gate(self, job: Job, checker: SafetyChecker) -> Callable[[bytes], bool]:
        """Whether a progress preview may be shown: scored like the result, since it is posted
        before the result is screened; one the check cannot score is withheld."""

        async def threshold() -> float | None:
            async with self.sessions() as session:
                return await review.preview_threshold(session, self.settings.moderation, job)

        try:
            limit = self._database.run(threshold())
        except (DBAPIError, OSError):
            limit = self.settings.moderation.safety_threshold  # the default's, rather than none
        if limit is None:
            return lambda preview: True

        def may_show(preview: bytes) -> bool:
            with Image.open(io.BytesIO(preview)) as image:
                (score,) = self._score(checker, [image.convert("RGB")])
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
        """Encode and write every image (and the grid); `StorageWriteFailed` if a write fails."""
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
        try:
            if spec.images > 1:
                tasks.append((0, render_grid(images), grid_key(job.id), None, combined_score(scores)))
            # zlib releases the GIL: the five PNGs encode in parallel.
            return list(self._encoder.map(lambda task: save(*task), tasks))
        except OSError as error:
            raise StorageWriteFailed from error

    def _finish(
        self, database: _Database, job_id: uuid.UUID, attempt: int, stored: list[lifecycle.StoredImage]
    ) -> JobStatus:
        async def complete() -> bool:
            async with database.sessions.begin() as session:
                completed = await lifecycle.complete_job(session, job_id, attempt, stored)
                if completed:  # held (or removed) in the same transaction: never seen before decided
                    await review.screen_result(session, self.settings.moderation, job_id)
                return completed

        if database.run_patiently(complete):
            self.publisher.publish(JobEvent(job_id=str(job_id), kind="succeeded", percent=100))
            return JobStatus.SUCCEEDED
        # Cancelled (the cancel already refunded) or taken over while rendering: the files are harmless.
        return JobStatus.CANCELLED


class _ProgressReporter:
    """Publishes every step; writes progress + heartbeat to the database at most once a second.

    The events go out from the runner's preview thread, in order: a preview's safety score (tens
    of ms) is not the pipeline's to wait for. A preview that finds another still waiting to be
    scored goes out without its picture, so they never queue up behind the steps.
    """

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
        self._preview_slot = threading.Semaphore(1)  # free while no preview waits to be scored
        self.seconds = 0.0  # time spent in here, for the overhead benchmark

    def report(self, percent: int, preview_png: bytes | None) -> None:
        started = time.perf_counter()
        try:
            self._report(percent, preview_png)
        finally:
            self.seconds += time.perf_counter() - started

    def _report(self, percent: int, preview_png: bytes | None) -> None:
        if preview_png is not None and not self._preview_slot.acquire(blocking=False):
            preview_png = None
        self.runner.previews.submit(self._publish, percent, preview_png)
        self._write(percent)

    def _publish(self, percent: int, preview_png: bytes | None) -> None:
        """On the preview thread: score the preview, then publish the step."""
        try:
            if preview_png is not None:
                try:
                    shown = self.may_show(preview_png)
                finally:
                    self._preview_slot.release()
                if not shown:
                    preview_png = None  # the progress still shows, without the picture
            self.runner.publisher.publish(JobEvent.progress(str(self.job_id), percent, preview_png))
        except Exception:  # a lost progress event is not worth a failed job
            log.exception("job %s: could not publish its progress", self.job_id)

    def _write(self, percent: int) -> None:
        now = time.monotonic()
        if now - self._last_write < PROGRESS_WRITE_INTERVAL and percent < 100:
            return
        self._last_write = now

        async def write() -> JobStatus | None:
            async with self.runner.sessions.begin() as session:
                return await lifecycle.record_progress(session, self.job_id, self.attempt, percent)

        try:
            status = self.runner._database.run(write())
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
