"""Which job messages a Celery broker still holds, and how many wait in each queue: read straight
from its storage, read-only.

kombu's Redis transport keeps waiting messages in one list per queue and priority step, and
delivered-but-unacknowledged ones in a hash; its filesystem transport (the embedded setup) keeps
one file per waiting message. Both store the message as JSON whose headers carry the task id.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import redis

from sojourn.queue import QUEUES

# kombu's Redis transport: priority steps 0, 3, 6, 9 (step 0 is the queue's own name) joined by
# this separator, and the hash of unacknowledged messages.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
REDIS_UNACKED = "unacked"


def _task_id(message: Any) -> str | None:
    if isinstance(message, dict):
        headers = message.get("headers")
        if isinstance(headers, dict) and isinstance(headers.get("id"), str):
            return headers["id"]
    return None


def _redis_lists(queue: str) -> list[str]:
    """The lists of one queue's waiting messages, one per priority step."""
    return [
        queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}" for step in REDIS_PRIORITY_STEPS
    ]


class RedisBrokerCensus:
    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        # `timeout`: seconds a read may wait for Redis (None: as long as it takes).
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    async def held_message_ids(self) -> set[str]:
        return await asyncio.to_thread(self._read)

    def queue_depths(self) -> dict[str, int]:
        """How many messages wait in each queue (delivered ones not counted)."""
        pipeline = self._client.pipeline(transaction=True)
        for queue in QUEUES:
            for key in _redis_lists(queue):
                pipeline.llen(key)
        lengths = iter(pipeline.execute())
        return {queue: sum(next(lengths) for _ in REDIS_PRIORITY_STEPS) for queue in QUEUES}

    def _read(self) -> set[str]:
        keys = [key for queue in QUEUES for key in _redis_lists(queue)]
        pipeline = self._client.pipeline(transaction=True)  # one snapshot of lists and hash
        for key in keys:
            pipeline.lrange(key, 0, -1)
        pipeline.hvals(REDIS_UNACKED)
        *lists, unacked = pipeline.execute()
        ids: set[str] = set()
        for raw in (item for items in lists for item in items):
            if (task_id := _task_id(_loads(raw))) is not None:
                ids.add(task_id)
        for raw in unacked:  # [message, exchange, routing key]
            entry = _loads(raw)
            if isinstance(entry, list) and entry and (task_id := _task_id(entry[0])) is not None:
                ids.add(task_id)
        return ids

    def close(self) -> None:
        self._client.close()


class FolderBrokerCensus:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def held_message_ids(self) -> set[str]:
        return await asyncio.to_thread(self._read)

    def queue_depths(self) -> dict[str, int]:
        """How many messages wait in each queue: kombu names each file `<time>_<uuid>.<queue>.msg`."""
        return {queue: sum(1 for _ in self._folder.glob(f"*.{queue}.msg")) for queue in QUEUES}

    def _read(self) -> set[str]:
        ids: set[str] = set()
        for path in self._folder.glob("*.msg"):
            try:
                message = _loads(path.read_bytes())
            except FileNotFoundError:  # consumed since the listing
                continue
            if (task_id := _task_id(message)) is not None:
                ids.add(task_id)
        return ids

    def close(self) -> None:
        pass


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
