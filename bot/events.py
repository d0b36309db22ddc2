"""How the bot hears about jobs: the worker's events over Redis pub/sub, or, embedded, the table.

With `REDIS_URL` set, the worker publishes every step (progress + a preview every few steps) and
every end on `sojourn:job-events`; the bot subscribes. Pub/sub keeps nothing for a subscriber
that is away, which is fine: after every (re)subscription the bot sweeps the jobs table for
results it missed. Without Redis (the embedded setup) the bot polls the jobs table for progress
(no previews: those travel only as events) and for ended jobs.

Both are `discord.ext.tasks` loops handing what they hear to `Delivery`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis.asyncio as aioredis
from discord.ext import tasks
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import Delivery, cancel_loop
from bot.instrumentation import Instrumentation
from db.models import Job, JobStatus
from sojourn.events import CHANNEL, JobEvent, decode_event
from sojourn.settings import Settings

log = logging.getLogger(__name__)
RECONNECT_DELAY = 2.0


class JobEventSource(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


class RedisJobEvents:
    """One subscription per turn of the loop; a lost connection is retried `RECONNECT_DELAY` later."""

    def __init__(self, redis_url: str, delivery: Delivery, instrumentation: Instrumentation) -> None:
        self.redis_url = redis_url
        self.delivery = delivery
        self.instrumentation = instrumentation
        self._client: aioredis.Redis | None = None
        self._listener = tasks.loop(seconds=RECONNECT_DELAY, name="sojourn-job-events")(self._subscription)

    def start(self) -> None:
        self._client = aioredis.Redis.from_url(self.redis_url)
        self._listener.start()

    async def stop(self) -> None:
        await cancel_loop(self._listener)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _subscription(self) -> None:
        assert self._client is not None
        try:
            await self._listen(self._client)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            log.warning("lost the job events (%s); reconnecting in %.0f s", error, RECONNECT_DELAY)

    async def _listen(self, client: aioredis.Redis) -> None:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            # Whatever ended while nobody listened is in the database: deliver it now.
            self.delivery.spawn(self.delivery.sweep())
            while True:
                message = await self.instrumentation.external_wait(
                    pubsub.get_message(ignore_subscribe_messages=True, timeout=None),
                    reason="job events from the worker (Redis pub/sub)",
                )
                if message is None or message.get("type") != "message":
                    continue
                try:
                    event = decode_event(message["data"])
                except (ValidationError, ValueError):
                    log.warning("ignoring a malformed job event: %r", message["data"][:200])
                    continue
                await self.delivery.on_event(event)


class PolledJobEvents:
    """Embedded mode: read progress and endings from the jobs table every `event_poll_interval`."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], delivery: Delivery, interval: float
    ) -> None:
        self.sessions = sessions
        self.delivery = delivery
        self._shown: dict[str, int] = {}
        self._poller = tasks.loop(seconds=interval, name="sojourn-job-poll")(self._poll_quietly)
        self._poller.before_loop(delivery.channels.wait_until_ready)

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await cancel_loop(self._poller)

    async def _poll_quietly(self) -> None:
        try:
            await self.poll()
        except Exception:  # the loop goes on: the next poll retries
            log.exception("polling the jobs table failed")

    async def poll(self) -> None:
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.progress).where(
                        Job.status == JobStatus.RUNNING, Job.channel_id.is_not(None)
                    )
                )
            ).all()
        running = {str(job_id): progress for job_id, progress in rows}
        for job_id, progress in running.items():
            if self._shown.get(job_id) != progress:
                await self.delivery.on_event(JobEvent(job_id=job_id, kind="progress", percent=progress))
        self._shown = running
        await self.delivery.sweep()


def make_event_source(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    delivery: Delivery,
    instrumentation: Instrumentation,
) -> JobEventSource:
    if settings.redis_url:
        return RedisJobEvents(settings.redis_url, delivery, instrumentation)
    return PolledJobEvents(sessions, delivery, settings.bot.event_poll_interval)
