"""What the bot must be allowed to do in a channel before it takes anyone's credits there."""

from __future__ import annotations

import discord

from sojourn.errors import UserError

_PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "attach_files": "Attach Files",
}


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
