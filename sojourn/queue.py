"""The job queue's interface: where submitted jobs go for a worker to pick up, by job id only.

The task and queue names live here, with the interface, so the services, the bot and the worker
agree on them without the services importing the worker. The Celery app itself is built by the
composition root (`sojourn.celery_app.make_celery`, called from the CLI and the tests).

Each message carries its job's `dispatch` (the job row's message generation) and is named for
both, so the recovery sweep can ask the broker which messages it still holds
(`sojourn.broker_census`) and resend, under a new generation, a queued job whose message is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Protocol

from sojourn.batching import Coalescer

if TYPE_CHECKING:
    from celery import Celery

RENDER_TASK = "sojourn.render_job"
QUEUES = ("fast", "relax")  # `--fast` / `--relax`: each a Celery queue
# kombu's Redis transport serves priority 0 first: a job sent again (its worker died, or the broker
# lost its message) goes ahead of the new jobs, which keep their order behind it.
NEW_JOB_PRIORITY = 3
RESENT_JOB_PRIORITY = 0


def message_id(job_id: uuid.UUID, dispatch: int) -> str:
    """The task id of a job's message of one generation: `<job id>.<dispatch>`."""
    return f"{job_id}.{dispatch}"


class JobQueue(Protocol):
    """Where submitted jobs are sent for a worker to pick up (Celery in production)."""

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None: ...


class BrokerCensus(Protocol):
    """Which job messages the broker still holds, waiting or delivered but not yet acknowledged."""

    async def held_message_ids(self) -> set[str]: ...


class CeleryJobQueue:
    """Sends the render task by name, with the job id and its dispatch only.

    kombu's publish blocks, so messages are sent from a thread; the messages of concurrent
    `enqueue` calls share one trip there (`Coalescer`) and go to Redis in one pipeline (kombu's
    `Producer.batch`), each still a message of its own.
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        # Two batches at once: the group commit hands over two batches of submissions at once.
        self._sender: Coalescer[tuple[uuid.UUID, str, int], Exception | None] = Coalescer(
            self._send_all, concurrency=2
        )

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        (failure,) = await self._sender.submit([(job_id, mode, dispatch)])
        if failure is not None:
            raise failure

    async def _send_all(self, messages: list[tuple[uuid.UUID, str, int]]) -> list[Exception | None]:
        return await asyncio.to_thread(self._send_together, messages)

    def _send_together(self, messages: list[tuple[uuid.UUID, str, int]]) -> list[Exception | None]:
        """Send the messages in one batch; if it fails (the broker is down) they all fail with it,
        rather than each waiting out the same outage. The recovery sweep resends them all (a
        message that did leave is run once: the worker claims a job's dispatch once)."""
        try:
            with self._app.producer_or_acquire() as producer, producer.batch():
                for job_id, mode, dispatch in messages:
                    self._app.send_task(
                        RENDER_TASK,
                        args=[str(job_id), dispatch],
                        queue=mode if mode in QUEUES else "fast",
                        task_id=message_id(job_id, dispatch),
                        priority=RESENT_JOB_PRIORITY if dispatch > 0 else NEW_JOB_PRIORITY,
                        producer=producer,
                        # Straight to the queue's Redis list: declaring the queue again with each
                        # message cost a quarter of the send; the workers declare their queues.
                        declare=[],
                    )
        except Exception as error:
            return [error] * len(messages)
        return [None] * len(messages)
