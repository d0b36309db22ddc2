"""`/mod settings`: the options given, as `server_settings.update_server_moderation` changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from sojourn.errors import UserError
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.services.moderation.server_settings import (
    ServerModeration,
    server_moderation,
    update_server_moderation,
)

if TYPE_CHECKING:
    from bot.bot import SojournBot


@dataclass(frozen=True)
class SettingsAsked:
    """What the moderator gave, as typed; None: left as it is."""

    safety_mode: str | None = None
    safety_threshold: float | None = None
    allow_in_age_restricted: bool | None = None
    strikes_before_ban: int | None = None
    strike_window_hours: int | None = None
    strike_ban_hours: int | None = None
    moderator_role: discord.Role | None = None
    imagine_channel_add: discord.abc.GuildChannel | None = None
    imagine_channel_remove: discord.abc.GuildChannel | None = None
    imagine_channels_clear: bool | None = None
    default_words: bool | None = None

    def changes(self, current: ServerModeration) -> dict[str, Any]:
        """The settings to change, named as `server_settings.CHANGEABLE` names them."""
        changes: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "safety_mode",
                "safety_threshold",
                "allow_in_age_restricted",
                "strikes_before_ban",
                "strike_window_hours",
                "strike_ban_hours",
                "default_words",
            )
            if getattr(self, name) is not None
        }
        if self.moderator_role is not None:
            if self.moderator_role.is_default():
                raise UserError(
                    "@everyone cannot be the moderator role: everyone would moderate. Pick a role only "
                    "your moderators have. Nothing was changed."
                )
            changes["moderator_role_id"] = self.moderator_role.id
        # Edited by the service under the row's lock, so two moderators' edits never lose one.
        if self.imagine_channels_clear:
            changes["imagine_channels_clear"] = True
        if self.imagine_channel_add is not None:
            changes["imagine_channel_add"] = self.imagine_channel_add.id
        if self.imagine_channel_remove is not None:
            changes["imagine_channel_remove"] = self.imagine_channel_remove.id
        return changes


async def apply_settings(
    bot: SojournBot, actor: Actor, asked: SettingsAsked
) -> tuple[ServerModeration, bool]:
    """Change what was asked (if anything); the server's settings after, and whether any changed."""
    async with bot.sessions() as session:
        guild_id = await require_moderator(session, actor)
        current = await server_moderation(session, bot.settings.moderation, guild_id)
    changes = asked.changes(current)
    if not changes:
        return current, False
    return await update_server_moderation(bot.sessions, bot.settings.moderation, actor, **changes), True


def settings_text(server: ServerModeration, changed: bool) -> str:
    head = "Saved. " if changed else ""
    lines = "\n".join(f"- {line}" for line in server.describe())
    return (
        f"{head}This server's moderation settings:\n{lines}\n"
        "Change any of them with the options of /mod settings."
    )
