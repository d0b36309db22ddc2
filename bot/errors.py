"""How errors reach users: a `UserError` as its own ephemeral message, anything else as a short
apology (the traceback goes to the log, never to Discord).

Commands wrap their work in `user_errors_as_replies` so an expected mistake (a bad prompt, no
credits) is an answer, not an error; the tree's `on_error` catches everything else. Component
callbacks (buttons, selects) use `errors_as_replies`, since discord.py only logs their failures
and the user would see "This interaction failed".
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
from discord import app_commands
from sqlalchemy.exc import DBAPIError

from sojourn.errors import UserError

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong on our side, and nothing was charged. Please try again in a moment."
# What reaching the database raises while it restarts or fails over (asyncpg's connect errors
# are plain OSErrors: refused, timed out, or the name not found).
DATABASE_OUTAGES = (DBAPIError, ConnectionError, TimeoutError, socket.gaierror)
DATABASE_DOWN = (
    "The bot cannot reach its database right now, so nothing was done and nothing was charged. "
    "Please try again in a minute."
)


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer the interaction privately, whether or not it was already acknowledged (deferred)."""
    text = text if len(text) <= 2000 else text[:1999] + "…"
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def _reply_quietly(interaction: discord.Interaction, text: str) -> None:
    try:
        await send_ephemeral(interaction, text)
    except discord.HTTPException:  # the interaction expired, or Discord is having a moment
        log.warning("could not tell user %s: %s", interaction.user.id, text, exc_info=True)


@asynccontextmanager
async def user_errors_as_replies(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Turn a `UserError` raised inside into the ephemeral answer `.message`."""
    try:
        yield
    except UserError as error:
        await _reply_quietly(interaction, error.message)


@asynccontextmanager
async def errors_as_replies(interaction: discord.Interaction) -> AsyncIterator[None]:
    """For component callbacks: a `UserError` as its message, anything else logged and apologised for."""
    try:
        yield
    except UserError as error:
        await _reply_quietly(interaction, error.message)
    except DATABASE_OUTAGES:
        log.warning("component interaction failed: the database is unreachable", exc_info=True)
        await _reply_quietly(interaction, DATABASE_DOWN)
    except Exception:
        log.exception("component interaction %s failed", dict(interaction.data or {}).get("custom_id"))
        await _reply_quietly(interaction, GENERIC_FAILURE)


def describe_app_command_error(error: app_commands.AppCommandError) -> str | None:
    """What to tell the user about an error discord.py raised around a command; None for a bug."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, UserError):
        return original.message
    if isinstance(original, DATABASE_OUTAGES):  # a restart or failover: worth a retry
        return DATABASE_DOWN
    if isinstance(original, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {original.retry_after:.0f} s."
    if isinstance(original, app_commands.NoPrivateMessage):
        return "This command works in a server channel, not in direct messages."
    if isinstance(original, app_commands.TransformerError):
        return f"'{str(original.value)[:50]}' doesn't work for that option: check it and try again."
    if isinstance(original, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


class SojournTree(app_commands.CommandTree[discord.Client]):
    """The command tree with the one app-command error handler."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if interaction.type == discord.InteractionType.autocomplete:
            log.error("autocomplete failed for user %s", interaction.user.id, exc_info=error)
            return  # an autocomplete cannot be answered with a message
        message = describe_app_command_error(error)
        if message == DATABASE_DOWN:
            log.warning("/%s: the database is unreachable (%s)", _command_name(interaction), error)
        if message is None:
            original = getattr(error, "original", error)
            log.error(
                "/%s failed for user %s", _command_name(interaction), interaction.user.id, exc_info=original
            )
            message = GENERIC_FAILURE
        await _reply_quietly(interaction, message)


def _command_name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"
