"""Channels: what the bot must be allowed to do in one before it takes anyone's credits there, and
how delivery reaches one (`ChannelResolver`) without holding the whole bot."""

from __future__ import annotations

from typing import Protocol

import discord

from bot.uploads import DEFAULT_FILESIZE_LIMIT
from sojourn.errors import UserError
from sojourn.services.submission import Origin

_PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "attach_files": "Attach Files",
}


def origin_of(interaction: discord.Interaction) -> Origin:
    """Where a job is asked for: the server, the channel, whether it is age-restricted (where a
    server may let the image safety check pass more) and whether @everyone can view it (only then
    may its results enter the galleries)."""
    channel, guild = interaction.channel, interaction.guild
    is_nsfw = getattr(channel, "is_nsfw", None)  # a partial channel knows nothing of it
    return Origin(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        age_restricted=bool(is_nsfw()) if callable(is_nsfw) else False,
        channel_public=_everyone_can_view(channel, guild),
    )


def _everyone_can_view(channel: object, guild: discord.Guild | None) -> bool:
    """False when unsure: a partial channel, a direct message, a guild not in the cache."""
    if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return False
    return channel.permissions_for(guild.default_role).view_channel


def check_can_post(interaction: discord.Interaction) -> None:
    """The result is the bot's own message: refuse now, before charging, if it could not be posted."""
    in_thread = isinstance(interaction.channel, discord.Thread)
    needed = ("view_channel", "send_messages_in_threads" if in_thread else "send_messages", "attach_files")
    missing = [_PERMISSION_NAMES[name] for name in needed if not getattr(interaction.app_permissions, name)]
    if missing:
        raise UserError(
            f"I can't post results in this channel: I'm missing the {', '.join(missing)} permission. "
            "Ask a moderator, or use another channel. Nothing was charged."
        )


class ChannelResolver(Protocol):
    """The channels this process delivers to, as delivery needs them."""

    async def wait_until_ready(self) -> None:
        """Until the guilds are known (which ones this process serves depends on them)."""

    def channel(self, channel_id: int, guild_id: int | None) -> discord.PartialMessageable: ...

    def filesize_limit(self, guild_id: int | None) -> int: ...

    def serves(self, guild_id: int | None) -> bool:
        """Whether this process delivers for that guild (None: direct messages)."""
        ...

    def served_guild_ids(self) -> list[int] | None:
        """The guilds this process delivers for; None: all of them."""
        ...


class ClientChannels:
    """A `ChannelResolver` over the bot's own connection, shards included."""

    def __init__(self, client: discord.AutoShardedClient) -> None:
        self._client = client

    async def wait_until_ready(self) -> None:
        await self._client.wait_until_ready()

    def channel(self, channel_id: int, guild_id: int | None) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(channel_id, guild_id=guild_id)

    def filesize_limit(self, guild_id: int | None) -> int:
        guild = self._client.get_guild(guild_id) if guild_id is not None else None
        return guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT

    def serves(self, guild_id: int | None) -> bool:
        # With several processes (shard_ids set) each delivers for its own guilds, and the one
        # running shard 0 for direct messages.
        if self._client.shard_ids is None:
            return True
        if guild_id is None:
            return 0 in self._client.shard_ids
        # Discord's own rule, from the id alone: right even before the guild is in the cache.
        shard_count = self._client.shard_count or 1
        return (guild_id >> 22) % shard_count in self._client.shard_ids

    def served_guild_ids(self) -> list[int] | None:
        if self._client.shard_ids is None:
            return None
        return [guild.id for guild in self._client.guilds]
