"""Celery tasks and the worker's life: thin tasks that hand a job id to the process's runner.

Each pool process builds its `JobRunner` and loads the models when it starts, as cog's `setup()`
does, so no job's time limit pays for the load: `worker_process_init` runs before the process
reports up, and it starts no task before that. On Celery's event loop (a Redis broker) the pool
kills a process that is not up within `worker_proc_alive_timeout`, 4 s by default (it already
takes longer to import torch), so `sojourn.celery_app.make_celery` raises that timeout
deliberately. Loading on a thread after start-up instead would keep the 4 s check, but the first
job, often queued before the worker started, would then wait for the load inside its time limit.

A task returns once its job is rendered; the runner stores the images in the background while the
next task renders (`inference.runner`). A pool process that exits (a warm shutdown) first lets it
finish, in `worker_process_shutdown`: billiard ends its processes with `os._exit`, which would
skip the interpreter's own wait for threads.

The worker's main process registers an incarnation before its pool starts (the pool processes
inherit it), then beats and runs the cluster's recovery sweep (`inference.recovery`). With
SOJOURN_METRICS__WORKER_PORT set it also serves `/metrics` for its pool processes (`sojourn.metrics`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from sojourn.queue import RENDER_TASK

if TYPE_CHECKING:
    from inference.recovery import SweeperThread
    from inference.runner import JobRunner
    from sojourn.metrics import MetricsEndpoint
    from sojourn.services.workers import WorkerProcess

log = logging.getLogger(__name__)


class RenderTask(Task):
    """The render task's class; one instance per process, holding that process's runner."""

    _runner: JobRunner | None = None

    def start_process(self) -> JobRunner:
        """Build this process's runner and load its models (also the fallback for a pool that sends
        no `worker_process_init`). A failed load is logged; each job then tries again, and fails."""
        from inference.runner import JobRunner
        from sojourn.settings import Settings

        self._runner = runner = JobRunner(Settings(), this_process())
        try:
            runner.load_models()
        except Exception:
            log.exception("the models did not load; every job will try again (and fail)")
        return runner

    def runner(self) -> JobRunner:
        return self._runner or self.start_process()

    def stop_process(self) -> None:
        """This process is exiting: end the job being stored in the background first."""
        if self._runner is not None:
            self._runner.close()


@shared_task(name=RENDER_TASK, bind=True, base=RenderTask)
def render_job(self: RenderTask, job_id: str, dispatch: int | None = None) -> str | None:
    status = self.runner().run(uuid.UUID(job_id), dispatch)
    return status.value if status else None


# This worker: its node name and incarnation, set in the main process before the pool forks.
_node_name: str | None = None
_incarnation: uuid.UUID | None = None
_sweeper: SweeperThread | None = None  # the main process's, from `worker_ready` to `worker_shutdown`


def this_process() -> WorkerProcess:
    from sojourn.services.workers import WorkerProcess

    if _node_name is None or _incarnation is None:
        raise RuntimeError("the worker registers itself at `worker_init`, before any task runs")
    return WorkerProcess(name=_node_name, incarnation=_incarnation, pid=os.getpid())


@worker_init.connect
def register_incarnation(sender: Any = None, **_kwargs: Any) -> None:
    from inference.recovery import register_this_worker
    from sojourn.settings import Settings

    global _node_name, _incarnation
    _node_name = getattr(sender, "hostname", None) or Settings().worker_name
    _incarnation = register_this_worker(Settings(), _node_name)


@worker_process_init.connect
def start_render_process(**_kwargs: Any) -> None:
    render_job.start_process()


# Connected before `forget_process_metrics`, which must come after the last render is counted.
@worker_process_shutdown.connect
def stop_render_process(**_kwargs: Any) -> None:
    render_job.stop_process()


@worker_ready.connect
def start_recovery(sender: Any = None, **_kwargs: Any) -> None:
    from inference.recovery import RecoverySweeper, SweeperThread, WorkerBeat
    from sojourn.celery_app import broker_census, make_celery
    from sojourn.queue import CeleryJobQueue
    from sojourn.settings import Settings

    global _sweeper
    settings = Settings()
    queue = CeleryJobQueue(make_celery(settings))
    sweeper = RecoverySweeper(settings, queue, broker_census(settings))
    beat = WorkerBeat(settings, this_process().incarnation)
    _sweeper = SweeperThread(sweeper, beat)
    _sweeper.start()


@worker_shutdown.connect
def stop_recovery(sender: Any = None, **_kwargs: Any) -> None:
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None


# This worker's /metrics: the main process's server, and the folder where every process of the
# worker keeps its prometheus_client multiprocess files (the pool processes inherit its name).
MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"
_metrics: MetricsEndpoint | None = None
_metrics_folder: str | None = None


@worker_init.connect
def start_metrics(**_kwargs: Any) -> None:
    """Serve `/metrics` when SOJOURN_METRICS__WORKER_PORT is set.

    prometheus_client chooses multiprocess files on its first import, from the environment: the
    folder is named here, in the main process, before that import and before the pool forks.
    """
    from sojourn.settings import Settings

    global _metrics, _metrics_folder
    settings = Settings()
    if settings.metrics.worker_port is None:
        return
    if "prometheus_client" in sys.modules:
        log.warning("prometheus_client was imported before worker_init: renders will not be counted")
    _metrics_folder = tempfile.mkdtemp(prefix="sojourn-metrics-")  # a fresh one each start
    os.environ[MULTIPROCESS_FOLDER] = _metrics_folder
    from sojourn.metrics import serve_worker_metrics

    _metrics = serve_worker_metrics(settings, _metrics_folder)


@worker_process_shutdown.connect
def forget_process_metrics(pid: int | None = None, **_kwargs: Any) -> None:
    """A pool process is exiting: its live gauges go with it (its counts stay in the totals)."""
    if _metrics_folder is not None and pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, _metrics_folder)


@worker_shutdown.connect
def stop_metrics(sender: Any = None, **_kwargs: Any) -> None:
    global _metrics, _metrics_folder
    if _metrics is not None:
        _metrics.close()
        _metrics = None
    if _metrics_folder is not None:
        shutil.rmtree(_metrics_folder, ignore_errors=True)
        _metrics_folder = None
