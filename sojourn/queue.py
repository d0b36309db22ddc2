"""The job service's queue, backed by Celery: tasks are sent by name, with the job id only."""

from __future__ import annotations

import asyncio
import uuid

from celery import Celery

from inference.celery_app import QUEUES, RENDER_TASK


class CeleryJobQueue:
    def __init__(self, app: Celery) -> None:
        self._app = app

    async def enqueue(self, job_id: uuid.UUID, mode: str) -> None:
        queue = mode if mode in QUEUES else "fast"
        # kombu's publish blocks; keep the event loop free while it talks to the broker.
        await asyncio.to_thread(self._app.send_task, RENDER_TASK, args=[str(job_id)], queue=queue)
