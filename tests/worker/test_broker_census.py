"""The broker census reads which job messages a real broker holds: Redis (waiting and unacknowledged)
and the embedded filesystem transport."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis

from sojourn.celery_app import broker_census, make_celery
from sojourn.queue import CeleryJobQueue, message_id
from sojourn.settings import Settings

REDIS_DB = 9


async def test_redis_waiting_and_unacked_messages_are_held(redis_base_url: str, tmp_path: Path) -> None:
    url = redis_base_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(redis_url=url, data_dir=tmp_path)
    app = make_celery(settings)
    queue, census = CeleryJobQueue(app), broker_census(settings)
    fast, relax = uuid.uuid4(), uuid.uuid4()
    await queue.enqueue(fast, "fast", 2)
    await queue.enqueue(relax, "relax", 0)
    assert await census.held_message_ids() == {message_id(fast, 2), message_id(relax, 0)}

    # A worker took one and has not acknowledged it yet: still held (it is redelivered if lost).
    with app.connection_for_read() as connection:
        taken = connection.SimpleQueue("fast", no_ack=False).get(timeout=5)
        assert taken.headers["id"] == message_id(fast, 2)
        assert await census.held_message_ids() == {message_id(fast, 2), message_id(relax, 0)}
        taken.ack()
    assert await census.held_message_ids() == {message_id(relax, 0)}

    redis.Redis.from_url(url).flushdb()  # a broker restarted without its data
    assert await census.held_message_ids() == set()
    census.close()


async def test_the_embedded_broker_folder(tmp_path: Path) -> None:
    settings = Settings(redis_url=None, data_dir=tmp_path)
    queue, census = CeleryJobQueue(make_celery(settings)), broker_census(settings)
    job = uuid.uuid4()
    assert await census.held_message_ids() == set()
    await queue.enqueue(job, "fast", 1)
    assert await census.held_message_ids() == {message_id(job, 1)}
    for path in (settings.embedded_broker_dir / "queue").glob("*.msg"):
        path.unlink()  # consumed
    assert await census.held_message_ids() == set()


async def test_a_resent_job_goes_ahead_of_new_ones(redis_base_url: str, tmp_path: Path) -> None:
    url = redis_base_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    app = make_celery(Settings(redis_url=url, data_dir=tmp_path))
    queue = CeleryJobQueue(app)
    first, second, resent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await queue.enqueue(first, "fast", 0)
    await queue.enqueue(second, "fast", 0)
    await queue.enqueue(resent, "fast", 1)  # its worker died: it was already someone's turn
    order = []
    with app.connection_for_read() as connection:
        fast = connection.SimpleQueue("fast")
        for _ in range(3):
            message = fast.get(timeout=5)
            order.append(message.headers["id"])
            message.ack()
    assert order == [message_id(resent, 1), message_id(first, 0), message_id(second, 0)]
