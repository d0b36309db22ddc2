"""Celery tasks: thin, they take a job id and hand it to the runner."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from sojourn.queue import RENDER_TASK

log = logging.getLogger(__name__)
RECOVERY_INTERVAL_SECONDS = 60.0
_stop_recovery = threading.Event()


@shared_task(name=RENDER_TASK, bind=True)
def render_job(self, job_id: str) -> str | None:  # type: ignore[no-untyped-def]
    from inference.runner import get_runner

    status = get_runner(self.request.hostname or "worker").run(uuid.UUID(job_id))
    return status.value if status else None


def recover_stranded_jobs() -> list[uuid.UUID]:
    """Resend jobs whose message never left or whose worker vanished (see `recover_jobs`)."""
    from db.session import make_engine, make_sessionmaker
    from sojourn.celery_app import make_celery
    from sojourn.queue import CeleryJobQueue
    from sojourn.services.recovery import recover_jobs
    from sojourn.settings import Settings

    settings = Settings()

    async def recover() -> list[uuid.UUID]:
        engine = make_engine(settings.resolved_database_url, pool_size=1)
        try:
            return await recover_jobs(
                make_sessionmaker(engine), CeleryJobQueue(make_celery(settings)), settings
            )
        finally:
            await engine.dispose()

    return asyncio.run(recover())


def _recovery_loop() -> None:
    # At start-up, then every minute: a job whose message was acked by a killed process (hard
    # time limit) or lost with a broker must not wait for the next worker restart.
    while not _stop_recovery.is_set():
        try:
            resent = recover_stranded_jobs()
            if resent:
                log.info("resent %d stranded jobs", len(resent))
        except Exception:
            log.exception("job recovery failed; retrying in %.0f s", RECOVERY_INTERVAL_SECONDS)
        _stop_recovery.wait(RECOVERY_INTERVAL_SECONDS)


@worker_ready.connect
def start_recovery(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    _stop_recovery.clear()
    threading.Thread(target=_recovery_loop, name="sojourn-recovery", daemon=True).start()


@worker_shutdown.connect
def stop_recovery(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    _stop_recovery.set()
