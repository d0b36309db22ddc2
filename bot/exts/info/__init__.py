"""/info: balance, today's free credits, the queue, mode and defaults, and results that failed to post."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.info._cog import Info

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    await bot.add_cog(Info(bot))
