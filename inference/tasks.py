"""Celery tasks and the worker's life: thin tasks that hand a job id to the process's runner.

Each pool process builds its `JobRunner` and loads the models when it starts, as cog's `setup()`
does, so no job's time limit pays for the load: `worker_process_init` runs before the process
reports up, and it starts no task before that. On Celery's event loop (a Redis broker) the pool
kills a process that is not up within `worker_proc_alive_timeout`, 4 s by default (it already
takes longer to import torch), so `sojourn.celery_app.make_celery` raises that timeout
deliberately. Loading on a thread after start-up instead would keep the 4 s check, but the first
job, often queued before the worker started, would then wait for the load inside its time limit.

The worker's main process runs the cluster's recovery sweep (`inference.recovery`).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from sojourn.queue import RENDER_TASK

if TYPE_CHECKING:
    from inference.recovery import SweeperThread
    from inference.runner import JobRunner

log = logging.getLogger(__name__)


class RenderTask(Task):
    """The render task's class; one instance per process, holding that process's runner."""

    _runner: JobRunner | None = None

    def start_process(self, worker_node: str) -> JobRunner:
        """Build this process's runner and load its models (also the fallback for a pool that sends
        no `worker_process_init`). A failed load is logged; each job then tries again, and fails."""
        from inference.runner import JobRunner
        from sojourn.settings import Settings

        self._runner = runner = JobRunner(Settings(), worker_node)
        try:
            runner.load_models()
        except Exception:
            log.exception("the models did not load; every job will try again (and fail)")
        return runner

    def runner(self) -> JobRunner:
        return self._runner or self.start_process(self.request.hostname or "worker")


@shared_task(name=RENDER_TASK, bind=True, base=RenderTask)
def render_job(self: RenderTask, job_id: str) -> str | None:
    status = self.runner().run(uuid.UUID(job_id))
    return status.value if status else None


@worker_process_init.connect
def start_render_process(sender: str | None = None, **_kwargs: Any) -> None:
    render_job.start_process(sender or "worker")


_sweeper: SweeperThread | None = None  # the main process's, from `worker_ready` to `worker_shutdown`


@worker_ready.connect
def start_recovery(sender: Any = None, **_kwargs: Any) -> None:
    from inference.recovery import RecoverySweeper, SweeperThread
    from sojourn.celery_app import make_celery
    from sojourn.queue import CeleryJobQueue
    from sojourn.settings import Settings

    global _sweeper
    settings = Settings()
    _sweeper = SweeperThread(RecoverySweeper(settings, CeleryJobQueue(make_celery(settings))))
    _sweeper.start()


@worker_shutdown.connect
def stop_recovery(sender: Any = None, **_kwargs: Any) -> None:
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None
