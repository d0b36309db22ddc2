"""The Celery app, built on demand by the composition root (the CLI, the tests), never at import.

It imports no torch and nothing from `inference`: the bot and the CLI use it to send tasks by
name; the worker process loads `inference.tasks` (named in `include`), whose tasks are shared.

Broker: Redis when `REDIS_URL` is set; otherwise kombu's filesystem transport over a local
folder, so the embedded setup needs no server and the worker runs as a child process (its
CPU-heavy work then never stalls the bot's event loop; see BENCHMARKS.md).
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from sojourn.broker_census import FolderBrokerCensus, RedisBrokerCensus
from sojourn.queue import QUEUES
from sojourn.settings import Settings


def broker_options(settings: Settings) -> tuple[str, dict[str, object]]:
    if settings.redis_url:
        # Long GPU jobs must not be redelivered while still running (acks are late).
        return settings.redis_url, {"visibility_timeout": settings.task_time_limit * 2}
    folder = settings.embedded_broker_dir
    # Made when an app is built (never at import): the filesystem transport needs the folders.
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://localhost/", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }


def broker_census(
    settings: Settings, *, timeout: float | None = None
) -> RedisBrokerCensus | FolderBrokerCensus:
    """What the recovery sweep reads to see which job messages the broker still holds (and the
    metrics, how many wait in each queue); `timeout`: seconds a read may wait for Redis."""
    if settings.redis_url:
        return RedisBrokerCensus(settings.redis_url, timeout=timeout)
    return FolderBrokerCensus(settings.embedded_broker_dir / "queue")


def make_celery(settings: Settings) -> Celery:
    broker_url, transport_options = broker_options(settings)
    app = Celery("sojourn", broker=broker_url, include=["inference.tasks"])
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,  # a job's message is acked only when the job has ended
        task_reject_on_worker_lost=True,  # a killed worker process puts the message back
        worker_prefetch_multiplier=1,  # never hold a second long job hostage
        worker_concurrency=1,  # one job at a time per GPU process (pipelines share state)
        # Pool processes load the models in `worker_process_init` (inference.tasks) before they report
        # up; Celery's default of 4 s kills each one mid-load, over and over, on a Redis broker.
        worker_proc_alive_timeout=600,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_ignore_result=True,  # results live in the database
        task_serializer="json",
        accept_content=["json"],
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="fast",
        # A broker blip must not cancel a render in progress (Celery 6 will default to cancelling).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
