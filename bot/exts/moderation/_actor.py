"""Who is acting, as the interaction says: the one place a moderation `Actor` is built."""

from __future__ import annotations

from typing import Any

import discord

from sojourn.services.moderation.permissions import Actor


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    """The member behind a command or a press; the services decide whether they moderate."""
    user = interaction.user
    roles = (
        frozenset(role.id for role in user.roles if not role.is_default())  # @everyone is no one's role
        if isinstance(user, discord.Member)
        else frozenset()
    )
    return Actor(
        user_id=user.id,
        guild_id=interaction.guild_id,
        manage_guild=interaction.permissions.manage_guild,
        role_ids=roles,
    )
