"""The bot: built once from `Settings` and a job queue, holding what every extension needs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.channels import ClientChannels
from bot.delivery import Delivery
from bot.errors import SojournTree
from bot.events import make_event_source
from bot.exts import EXTENSIONS
from bot.instrumentation import Instrumentation
from bot.profiles import ProfileRecorder
from db.session import make_engine, make_sessionmaker
from sojourn.collector import freeze_startup
from sojourn.metrics import MetricsEndpoint, serve_bot_metrics
from sojourn.prompt import PromptRules
from sojourn.queue import JobQueue
from sojourn.settings import Settings
from sojourn.storage import make_storage

log = logging.getLogger(__name__)

DATABASE_CONNECTIONS = 10  # the engine's pool (and as many again in overflow)


class SojournBot(commands.AutoShardedBot):
    """Sharded from the start: `SOJOURN_BOT__SHARD_COUNT` (or Discord's recommendation) decides how many."""

    def __init__(
        self, settings: Settings, *, queue: JobQueue, instrumentation: Instrumentation | None = None
    ) -> None:
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
        self.engine = make_engine(settings.resolved_database_url, pool_size=DATABASE_CONNECTIONS)
        self.sessions = make_sessionmaker(self.engine)
        self.queue = queue
        # /imagine's work after its deferral, at most this many at once: the rest wait their turn
        # without touching the event loop, which stays free to defer the next interactions.
        self.submission_slots = asyncio.Semaphore(DATABASE_CONNECTIONS)
        self._frozen = False  # startup frozen (at the first `on_ready`)
        self.storage = make_storage(settings)
        self.instrumentation = instrumentation or Instrumentation()
        self.delivery = Delivery(
            sessions=self.sessions,
            settings=settings,
            storage=self.storage,
            channels=ClientChannels(self),
            instrumentation=self.instrumentation,
            on_result_shown=lambda job_id: self.dispatch("result_delivered", job_id),
        )
        self.events = make_event_source(settings, self.sessions, self.delivery, self.instrumentation)
        self.profiles = ProfileRecorder(self.sessions)
        self.metrics: MetricsEndpoint | None = None  # `/metrics`, when SOJOURN_METRICS__BOT_PORT is set

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        self.events.start()
        self.delivery.start()
        self.metrics = serve_bot_metrics(self.settings)

    async def on_ready(self) -> None:
        # Startup and the guild caches are long-lived: frozen, the collector stops walking them
        # (`sojourn.collector`). Once: a reconnection's `on_ready` would freeze whatever garbage
        # is about by then.
        if not self._frozen:
            freeze_startup()
            self._frozen = True

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Every command, button, menu and modal passes here; the web gallery shows who made what.
        self.profiles.see(interaction.user)

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        # A member's first command has just made their row: the interaction's own try found none.
        self.profiles.see(interaction.user)

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
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)  # waits for a scrape in progress
            self.metrics = None
        await self.events.stop()
        await self.delivery.close()
        await self.profiles.close()
        try:
            await super().close()
        finally:
            await self.engine.dispose()


def create_bot(
    settings: Settings, *, queue: JobQueue, instrumentation: Instrumentation | None = None
) -> SojournBot:
    return SojournBot(settings, queue=queue, instrumentation=instrumentation)
