"""Job events the worker publishes for the bot: progress (with a preview), done, failed, cancelled.

They travel over Redis pub/sub when Redis is configured. They are a notification only: the
database holds the truth (status, progress, images), so a missed event loses nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Literal, Protocol

from pydantic import BaseModel

log = logging.getLogger(__name__)

CHANNEL = "sojourn:job-events"

EventKind = Literal["started", "progress", "succeeded", "failed", "cancelled"]


class JobEvent(BaseModel):
    job_id: str
    kind: EventKind
    percent: int = 0
    preview_png_b64: str | None = None
    error: str | None = None
    published_at: float | None = None  # wall-clock seconds, so a reader can measure the delay

    @classmethod
    def progress(cls, job_id: str, percent: int, preview_png: bytes | None) -> JobEvent:
        preview = base64.b64encode(preview_png).decode("ascii") if preview_png else None
        return cls(job_id=job_id, kind="progress", percent=percent, preview_png_b64=preview)

    def preview_png(self) -> bytes | None:
        return base64.b64decode(self.preview_png_b64) if self.preview_png_b64 else None


class EventPublisher(Protocol):
    def publish(self, event: JobEvent) -> None: ...


class DatabaseOnlyPublisher:
    """Embedded mode without Redis: progress is only in the jobs table, which readers poll."""

    def publish(self, event: JobEvent) -> None:
        return None


class RedisEventPublisher:
    """Publishes on Redis; while Redis is unreachable, events are dropped with one log line per outage."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)
        self._failing = False

    def publish(self, event: JobEvent) -> None:
        try:
            stamped = event.model_copy(update={"published_at": time.time()})
            self._client.publish(CHANNEL, stamped.model_dump_json(exclude_none=True))
        except Exception as error:  # an event is best effort; the database already has the state
            if not self._failing:
                self._failing = True
                log.warning("cannot publish job events (%s); dropping them until Redis answers", error)
            return
        if self._failing:
            self._failing = False
            log.info("publishing job events again")


def make_publisher(redis_url: str | None) -> EventPublisher:
    return RedisEventPublisher(redis_url) if redis_url else DatabaseOnlyPublisher()


def decode_event(payload: bytes | str) -> JobEvent:
    return JobEvent.model_validate(json.loads(payload))
