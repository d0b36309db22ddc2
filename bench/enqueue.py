"""Job messages to Redis: the queue's batched send against one `send_task` per message.

Run with `scripts/with-services.sh .venv/bin/python bench/enqueue.py`. Prints, per message, the
wall and CPU time of `CeleryJobQueue` enqueueing a burst of 200 concurrent jobs (one Redis
pipeline per batch, `Producer.batch`), and, for reference, of 200 plain `send_task` calls one
after another, each acquiring a producer and declaring its queue as Celery does by default.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sojourn.celery_app import make_celery
from sojourn.queue import NEW_JOB_PRIORITY, RENDER_TASK, CeleryJobQueue, message_id
from sojourn.settings import Settings

BURST = 200
ROUNDS = 7


def per_message(label: str, walls: list[float], cpus: list[float]) -> None:
    print(
        f"{label:<58} wall {statistics.median(walls) / BURST * 1000:.3f} ms, "
        f"CPU {statistics.median(cpus) / BURST * 1000:.3f} ms a message (median of {len(walls)} bursts)"
    )


async def main() -> None:
    redis_url = os.environ["SOJOURN_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/10"
    app = make_celery(Settings(redis_url=redis_url))
    queue = CeleryJobQueue(app)

    def plain_burst() -> None:
        for _ in range(BURST):
            job_id = uuid.uuid4()
            app.send_task(
                RENDER_TASK,
                args=[str(job_id), 0],
                queue="fast",
                task_id=message_id(job_id, 0),
                priority=NEW_JOB_PRIORITY,
            )

    async def queue_burst() -> None:
        await asyncio.gather(*(queue.enqueue(uuid.uuid4(), "fast") for _ in range(BURST)))

    await queue_burst()  # connections and the producer pool
    plain_burst()
    results: dict[str, tuple[list[float], list[float]]] = {"queue": ([], []), "plain": ([], [])}
    for _ in range(ROUNDS):  # alternating
        for label in results:
            wall, cpu = time.perf_counter(), time.process_time()
            if label == "queue":
                await queue_burst()
            else:
                plain_burst()
            results[label][0].append(time.perf_counter() - wall)
            results[label][1].append(time.process_time() - cpu)
    per_message(f"CeleryJobQueue, {BURST} concurrent enqueues", *results["queue"])
    per_message(f"send_task one by one, Celery's defaults ({BURST})", *results["plain"])
    app.connection_for_write().default_channel.client.flushdb()


if __name__ == "__main__":
    asyncio.run(main())
