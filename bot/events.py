"""How the bot hears about jobs: the worker's events over Redis pub/sub, or, embedded, the table.

With `REDIS_URL` set, the worker publishes every step (progress + a preview every few steps) and
every end on `sojourn:job-events`; the bot subscribes. Pub/sub keeps nothing for a subscriber
that is away, which is fine: after every (re)subscription the bot sweeps the jobs table for
results it missed. Without Redis (the embedded setup) the bot polls the jobs table for progress
(no previews: those travel only as events) and for ended jobs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select

from db.models import Job, JobStatus
from sojourn.events import CHANNEL, JobEvent, decode_event

if TYPE_CHECKING:
    from bot.bot import SojournBot

log = logging.getLogger(__name__)
RECONNECT_DELAY = 2.0


class JobEventSource(Protocol):
    async def run(self) -> None: ...


class RedisJobEvents:
    def __init__(self, bot: SojournBot, redis_url: str) -> None:
        self.bot = bot
        self.redis_url = redis_url

    async def run(self) -> None:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            while True:
                try:
                    await self._listen(client)
                except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                    log.warning("lost the job events (%s); reconnecting in %.0f s", error, RECONNECT_DELAY)
                    await self.bot.external_wait(
                        asyncio.sleep(RECONNECT_DELAY), reason="reconnecting to Redis"
                    )
        finally:
            await client.aclose()

    async def _listen(self, client: aioredis.Redis) -> None:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            # Whatever ended while nobody listened is in the database: deliver it now.
            self.bot.delivery.spawn(self.bot.delivery.sweep())
            while True:
                message = await self.bot.external_wait(
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
                self.bot.timings.mark("event_received", (event.job_id, event.kind))
                if event.published_at is not None:
                    self.bot.timings.mark(
                        "event_published", (event.job_id, event.kind), wall=event.published_at
                    )
                await self.bot.delivery.on_event(event)


class PolledJobEvents:
    """Embedded mode: read progress and endings from the jobs table every `event_poll_interval`."""

    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot
        self._shown: dict[str, int] = {}

    async def run(self) -> None:
        await self.bot.wait_until_ready()
        while True:
            await self.bot.external_wait(
                asyncio.sleep(self.bot.settings.bot.event_poll_interval), reason="polling the jobs table"
            )
            try:
                await self.poll()
            except Exception:
                log.exception("polling the jobs table failed")

    async def poll(self) -> None:
        async with self.bot.sessions() as session:
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
                await self.bot.delivery.on_event(JobEvent(job_id=job_id, kind="progress", percent=progress))
        self._shown = running
        await self.bot.delivery.sweep()


def make_event_source(bot: SojournBot) -> JobEventSource:
    redis_url = bot.settings.redis_url
    return RedisJobEvents(bot, redis_url) if redis_url else PolledJobEvents(bot)
