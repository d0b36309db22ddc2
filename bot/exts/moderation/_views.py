"""Every moderation button, each a `DynamicItem` whose custom_id says all it needs: registered
once by the extension, so any bot instance answers a press on any moderator's message."""

from __future__ import annotations

from typing import Any

import discord

from bot.appeal import AppealButton
from bot.exts.moderation._appeals import AppealDecisionButton
from bot.exts.moderation._log import LogPageButton
from bot.exts.moderation._queue import CancelJobButton
from bot.exts.moderation._review import ReviewButton

MODERATION_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    AppealButton,  # a member's, under a blocked prompt
    AppealDecisionButton,
    CancelJobButton,
    LogPageButton,
    ReviewButton,
)
