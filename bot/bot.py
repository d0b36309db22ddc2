"""The bot: built once from `Settings`, holding what every extension needs, passed down to them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import discord
from discord.ext import commands

from bot.delivery import Delivery
from bot.errors import SojournTree
from bot.events import make_event_source
from bot.exts import EXTENSIONS
from bot.result_view import DYNAMIC_ITEMS
from bot.timing import NoTimings, TimingHook
from db.session import make_engine, make_sessionmaker
from sojourn.celery_app import make_celery
from sojourn.prompt import PromptRules
from sojourn.queue import CeleryJobQueue, JobQueue
from sojourn.settings import Settings
from sojourn.storage import LocalStorage

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _plain_wait(awaitable: Awaitable[T], *, reason: str) -> T:
    return await awaitable


class SojournBot(commands.AutoShardedBot):
    """Sharded from the start: `SOJOURN_BOT__SHARD_COUNT` (or Discord's recommendation) decides how many."""

    def __init__(self, settings: Settings, *, queue: JobQueue | None = None) -> None:
        sharding: dict[str, Any] = {"shard_count": settings.bot.shard_count}
        if settings.bot.shard_ids is not None:  # this process runs only these shards
            sharding["shard_ids"] = settings.bot.shard_ids
        super().__init__(
            command_prefix=commands.when_mentioned,  # no prefix commands; slash commands only
            help_command=None,
            intents=discord.Intents.default(),  # no privileged intents: no message content, no members
            tree_cls=SojournTree,
            allowed_mentions=discord.AllowedMentions.none(),
            **sharding,
        )
        self.settings = settings
        self.rules = PromptRules.from_settings(settings)
        self.engine = make_engine(settings.resolved_database_url, pool_size=10)
        self.sessions = make_sessionmaker(self.engine)
        self.queue: JobQueue = queue or CeleryJobQueue(make_celery(settings))
        self.storage = LocalStorage(settings.resolved_storage_dir)
        self.delivery = Delivery(self)
        self.events = make_event_source(self)
        self.timings: TimingHook = NoTimings()
        # Every wait on input from outside Discord (Redis events, the pauses between polls of the
        # database) goes through here, so a simulated Discord (simcord's `env.external_wait`) can
        # tell it from stuck work.
        self.external_wait: Any = _plain_wait
        self._background: list[asyncio.Task[None]] = []

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.sync_commands()
        self._background = [
            asyncio.create_task(self.events.run(), name="sojourn-job-events"),
            asyncio.create_task(self.delivery.run_sweeper(), name="sojourn-delivery-sweep"),
        ]

    async def sync_commands(self) -> None:
        """Publish the slash commands (`SOJOURN_BOT__SYNC_COMMANDS`), to one guild when configured."""
        if not self.settings.bot.sync_commands:
            return
        guild_id = self.settings.bot.sync_guild_id
        if guild_id is None:
            synced = await self.tree.sync()
        else:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        log.info("synced %d slash commands%s", len(synced), f" to guild {guild_id}" if guild_id else "")

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.delivery.close()
        try:
            await super().close()
        finally:
            await self.engine.dispose()


def create_bot(settings: Settings, *, queue: JobQueue | None = None) -> SojournBot:
    return SojournBot(settings, queue=queue)
