"""/settings: a private panel of per-user defaults (quality, stylize, visibility, mode, remix, aspect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.settings._cog import Settings
from bot.exts.settings._views import PANEL_ITEMS

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    bot.add_dynamic_items(*PANEL_ITEMS)
    await bot.add_cog(Settings(bot))


async def teardown(bot: SojournBot) -> None:
    bot.remove_dynamic_items(*PANEL_ITEMS)
