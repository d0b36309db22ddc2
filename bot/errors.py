"""How errors reach users: a `UserError` as its own ephemeral message, anything else as a short
apology (the traceback goes to the log, never to Discord).

Commands wrap their work in `user_errors_as_replies` so an expected mistake (a bad prompt, no
credits) is an answer, not an error; the tree's `on_error` catches everything else. Component
callbacks (buttons, selects) use `errors_as_replies`, since discord.py only logs their failures
and the user would see "This interaction failed". All three answer through `_answer_error`, so a
prompt the word filter blocked carries its Appeal button wherever it was typed.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
from discord import app_commands
from sqlalchemy.exc import DBAPIError

from sojourn.errors import Banned, PromptBlocked, UserError
from sojourn.services.moderation import bans

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong on our side, and nothing was charged. Please try again in a moment."
# What reaching the database raises while it restarts or fails over (asyncpg's connect errors
# are plain OSErrors: refused, timed out, or the name not found).
DATABASE_OUTAGES = (DBAPIError, ConnectionError, TimeoutError, socket.gaierror)
DATABASE_DOWN = (
    "The bot cannot reach its database right now, so nothing was done and nothing was charged. "
    "Please try again in a minute."
)


async def send_ephemeral(
    interaction: discord.Interaction, text: str, *, view: discord.ui.View | None = None
) -> None:
    """Answer the interaction privately, whether or not it was already acknowledged (deferred)."""
    text = text if len(text) <= 2000 else text[:1999] + "…"
    buttons = view if view is not None else discord.utils.MISSING
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, view=buttons)
    else:
        await interaction.response.send_message(text, ephemeral=True, view=buttons)


async def _reply_quietly(
    interaction: discord.Interaction, text: str, *, view: discord.ui.View | None = None
) -> None:
    try:
        await send_ephemeral(interaction, text, view=view)
    except discord.HTTPException:  # the interaction expired, or Discord is having a moment
        log.warning("could not tell user %s: %s", interaction.user.id, text, exc_info=True)


def _view_for(error: BaseException) -> discord.ui.View | None:
    """The buttons an error's answer carries: Appeal under a recorded block."""
    if isinstance(error, PromptBlocked) and error.strike_id is not None:
        # Imported here: the Appeal button answers its own errors through this module.
        from bot.appeal import appeal_view

        return appeal_view(error.strike_id)
    return None


async def _answer_error(interaction: discord.Interaction, error: UserError) -> None:
    await _reply_quietly(interaction, error.message, view=_view_for(error))


@asynccontextmanager
async def user_errors_as_replies(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Turn a `UserError` raised inside into the ephemeral answer `.message`."""
    try:
        yield
    except UserError as error:
        await _answer_error(interaction, error)


@asynccontextmanager
async def errors_as_replies(interaction: discord.Interaction) -> AsyncIterator[None]:
    """For component callbacks: a `UserError` as its message, anything else logged and apologised for."""
    try:
        yield
    except UserError as error:
        await _answer_error(interaction, error)
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


# Commands a banned member may still run: /info says why and until when, and /imagine's
# submission checks the ban itself, under the user's row lock (`submission.lock_standing`).
BAN_EXEMPT_COMMANDS = frozenset({"info", "imagine"})


class SojournTree(app_commands.CommandTree[discord.Client]):
    """The command tree with the one app-command error handler, and the one ban check on commands."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """A member banned here is refused every command (but /info), with the reason and the end."""
        if interaction.type != discord.InteractionType.application_command:
            return True  # autocomplete: nothing is done
        if dict(interaction.data or {}).get("name") in BAN_EXEMPT_COMMANDS:
            return True
        sessions = getattr(interaction.client, "sessions", None)
        if sessions is None:
            return True
        try:
            async with sessions() as session:
                await bans.check_not_banned(session, interaction.user.id, interaction.guild_id)
        except Banned as banned:
            await _reply_quietly(interaction, banned.message)
            return False
        except DATABASE_OUTAGES:
            log.warning("/%s: the database is unreachable for the ban check", _command_name(interaction))
            await _reply_quietly(interaction, DATABASE_DOWN)
            return False
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if interaction.type == discord.InteractionType.autocomplete:
            log.error("autocomplete failed for user %s", interaction.user.id, exc_info=error)
            return  # an autocomplete cannot be answered with a message
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, UserError):
            await _answer_error(interaction, original)
            return
        message = describe_app_command_error(error)
        if message == DATABASE_DOWN:
            log.warning("/%s: the database is unreachable (%s)", _command_name(interaction), error)
        if message is None:
            log.error(
                "/%s failed for user %s", _command_name(interaction), interaction.user.id, exc_info=original
            )
            message = GENERIC_FAILURE
        await _reply_quietly(interaction, message)


def _command_name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"
