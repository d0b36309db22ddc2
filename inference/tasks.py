"""Celery tasks: thin, they take a job id and hand it to the runner."""

from __future__ import annotations

import logging
import uuid

from celery.signals import worker_ready

from inference.celery_app import RENDER_TASK, app

log = logging.getLogger(__name__)


@app.task(name=RENDER_TASK, bind=True)
def render_job(self, job_id: str) -> str | None:  # type: ignore[no-untyped-def]
    from inference.runner import get_runner

    status = get_runner(self.request.hostname or "worker").run(uuid.UUID(job_id))
    return status.value if status else None


@worker_ready.connect
def recover_on_start(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Resend jobs stranded by a crash (unsent messages, dead workers) when a worker comes up."""
    import asyncio

    from db.session import make_engine, make_sessionmaker
    from sojourn.queue import CeleryJobQueue
    from sojourn.services.jobs import recover_jobs
    from sojourn.settings import Settings

    settings = Settings()

    async def recover() -> list[uuid.UUID]:
        engine = make_engine(settings.resolved_database_url, pool_size=1)
        try:
            return await recover_jobs(
                make_sessionmaker(engine), CeleryJobQueue(app), max_attempts=settings.max_attempts
            )
        finally:
            await engine.dispose()

    try:
        resent = asyncio.run(recover())
        if resent:
            log.info("resent %d stranded jobs", len(resent))
    except Exception:
        log.exception("job recovery at start-up failed")
