"""A real Celery worker process on tiny models, with real Postgres and Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest
import redis
from PIL import Image as PILImage
from sqlalchemy import select

from db.models import Image, Job, JobStatus, LedgerEntry, LedgerKind
from sojourn.celery_app import make_celery
from sojourn.clock import utcnow
from sojourn.events import CHANNEL, JobEvent, decode_event
from sojourn.queue import RENDER_TASK, CeleryJobQueue
from sojourn.services.lifecycle import cancel_job
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings
from tests.conftest import running_worker, worker_settings
from tests.held_image import HeldImagePrompt

JOB_TIMEOUT = 120.0


class NotSent:
    """A queue that sends nothing, to stage jobs the way a crash would leave them."""

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        return None


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("worker-data")
    return worker_settings(database_url, redis_base_url, 4, data_dir, tiny_models)


@pytest.fixture(scope="module")
def celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    return make_celery(settings)


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    with running_worker(settings) as process:
        yield process


async def submit(sessions, settings, text: str, queue=None) -> Job:  # type: ignore[no-untyped-def]
    queue = queue or CeleryJobQueue(make_celery(settings))
    user_id = int(uuid.uuid4().int % 10**12)
    jobs = await submit_prompt(sessions, settings, queue, user_id=user_id, text=text)
    return jobs[0]


async def wait_for(
    sessions, job_id: uuid.UUID, statuses=(JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
) -> Job:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        async with sessions() as session:
            job = await session.get(Job, job_id)
            if job is not None and job.status in statuses:
                return job
        await asyncio.sleep(0.1)
    pytest.fail(f"job {job_id} did not reach {statuses} in {JOB_TIMEOUT} s")


async def images_of(sessions, job_id: uuid.UUID) -> list[Image]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list(
            (
                await session.execute(select(Image).where(Image.job_id == job_id).order_by(Image.index))
            ).scalars()
        )


async def ledger_kinds(sessions, job_id: uuid.UUID) -> list[LedgerKind]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
        )
        return list(rows.scalars())


async def test_imagine_renders_four_images_and_a_grid(sessions, settings, worker) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a lighthouse in a storm --ar 16:9 --seed 7")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.started_at and done.finished_at and done.worker_id and done.progress == 100

    images = await images_of(sessions, job.id)
    assert [i.index for i in images] == [0, 1, 2, 3, 4]
    assert [i.seed for i in images[1:]] == [7, 8, 9, 10]
    root = settings.resolved_storage_dir
    for image in images:
        png = PILImage.open(root / image.storage_key)
        assert png.format == "PNG" and png.size == (1344, 768) == (image.width, image.height)
        assert "--ar 16:9" in png.text["parameters"] and "--seed 7" in png.text["parameters"]
        assert json.loads(png.text["sojourn"])["job_id"] == str(job.id)
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]


async def test_progress_events_reach_100_with_previews(sessions, settings, worker) -> None:  # type: ignore[no-untyped-def]
    events: list[JobEvent] = []
    pubsub = redis.Redis.from_url(settings.redis_url).pubsub()
    pubsub.subscribe(CHANNEL)
    assert pubsub.get_message(timeout=10)["type"] == "subscribe"  # listening before the job exists
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                events.append(decode_event(message["data"]))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    job = await submit(sessions, settings, "a red fox --seed 11")
    await wait_for(sessions, job.id)
    # The event follows the database's commit: wait for it rather than for a guessed delay.
    deadline = time.monotonic() + JOB_TIMEOUT
    while not any(e.job_id == str(job.id) and e.kind == "succeeded" for e in list(events)):
        assert time.monotonic() < deadline, "no succeeded event"
        await asyncio.sleep(0.05)
    stop.set()
    listener.join()
    mine = [e for e in events if e.job_id == str(job.id)]
    progress = [e.percent for e in mine if e.kind == "progress"]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 10
    previews = [e.preview_png() for e in mine if e.preview_png_b64]
    assert previews and PILImage.open(io.BytesIO(previews[0])).format == "PNG"
    assert mine[0].kind == "started" and mine[-1].kind == "succeeded"


async def test_a_redelivered_finished_job_does_nothing(sessions, settings, celery_app, worker) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a teapot --seed 3")
    await wait_for(sessions, job.id)
    before = [(i.id, i.storage_key) for i in await images_of(sessions, job.id)]
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    barrier = await submit(
        sessions, settings, "a barrier --seed 4 --q .25"
    )  # one job at a time: runs after it
    await wait_for(sessions, barrier.id)
    assert [(i.id, i.storage_key) for i in await images_of(sessions, job.id)] == before
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]


async def test_a_half_run_job_is_redone_cleanly(sessions, settings, celery_app, worker) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a windmill --seed 21", queue=NotSent())
    async with sessions.begin() as session:  # as a worker that died mid-job would leave it
        stuck = await session.get(Job, job.id)
        stuck.status, stuck.worker_id, stuck.attempts = JobStatus.RUNNING, "gone@elsewhere", 1  # type: ignore[union-attr]
        stuck.heartbeat_at = utcnow() - dt.timedelta(hours=1)  # type: ignore[union-attr]
        session.add(Image(job_id=job.id, index=1, seed=0, width=1, height=1, storage_key="jobs/partial.png"))
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2
    images = await images_of(sessions, job.id)
    assert [i.index for i in images] == [0, 1, 2, 3, 4] and all(
        i.storage_key != "jobs/partial.png" for i in images
    )
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]


async def test_a_failing_job_is_refunded_and_the_worker_carries_on(
    sessions, settings, celery_app, worker
) -> None:  # type: ignore[no-untyped-def]
    job = await submit(sessions, settings, "a broken job --seed 9", queue=NotSent())
    async with sessions.begin() as session:  # a spec the pipeline cannot run
        broken = await session.get(Job, job.id)
        broken.spec = {**broken.spec, "scheduler": "no_such_scheduler"}  # type: ignore[union-attr]
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    failed = await wait_for(sessions, job.id)
    assert failed.status == JobStatus.FAILED
    assert "refunded" in (failed.error or "") and "Traceback" not in (failed.error or "")
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.REFUND]

    after = await submit(sessions, settings, "a healthy job --seed 10 --q .25")
    assert (await wait_for(sessions, after.id)).status == JobStatus.SUCCEEDED


async def test_running_out_of_memory_fails_cleanly_and_the_worker_recovers(  # type: ignore[no-untyped-def]
    sessions, settings, celery_app, worker
) -> None:
    job = await submit(sessions, settings, "an enormous mural --seed 15", queue=NotSent())
    async with sessions.begin() as session:  # latents of 275 GB: a real allocation failure
        huge = await session.get(Job, job.id)
        huge.spec = {**huge.spec, "width": 1 << 20, "height": 1 << 20}  # type: ignore[union-attr]
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    failed = await wait_for(sessions, job.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == (
        "the GPU ran out of memory: try a smaller --ar, lower --q or fewer images at once; "
        "your credits were refunded"
    )
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.REFUND]
    after = await submit(sessions, settings, "a modest sketch --seed 16 --q .25")
    assert (await wait_for(sessions, after.id)).status == JobStatus.SUCCEEDED


async def test_cancelling_a_running_job_interrupts_it_and_refunds(  # type: ignore[no-untyped-def]
    sessions, settings, celery_app, worker
) -> None:
    held = HeldImagePrompt(settings.resolved_storage_dir)
    job = await submit(sessions, settings, "a very slow cathedral --seed 12", queue=NotSent())
    await held.attach(sessions, job)
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    await wait_for(sessions, job.id, statuses=(JobStatus.RUNNING,))  # and held there: it cannot finish
    async with sessions.begin() as session:
        assert await cancel_job(session, job.id)
    await held.release()  # the worker renders, and stops at its first step's progress write
    cancelled = await wait_for(sessions, job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.REFUND]
    after = await submit(sessions, settings, "next in line --seed 13 --q .25")
    done = await wait_for(sessions, after.id)
    assert done.status == JobStatus.SUCCEEDED
    assert await images_of(sessions, job.id) == []
    assert (await wait_for(sessions, job.id)).progress == 0  # it never got to record a step


async def test_a_killed_worker_process_loses_no_job(sessions, settings, celery_app, worker) -> None:  # type: ignore[no-untyped-def]
    held = HeldImagePrompt(settings.resolved_storage_dir)
    job = await submit(sessions, settings, "a phoenix --seed 14", queue=NotSent())
    await held.attach(sessions, job)
    celery_app.send_task(RENDER_TASK, args=[str(job.id)], queue="fast")
    await wait_for(sessions, job.id, statuses=(JobStatus.RUNNING,))  # claimed, and held mid-job
    children = psutil.Process(worker.pid).children(recursive=True)
    assert children, "the prefork pool should have a child process"
    for child in children:
        child.kill()  # as the kernel's OOM killer would
    psutil.wait_procs(children, timeout=10)
    await held.release()  # to whichever process runs the redelivered job
    done = await wait_for(sessions, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2
    assert await ledger_kinds(sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]
    assert len(await images_of(sessions, job.id)) == 5
