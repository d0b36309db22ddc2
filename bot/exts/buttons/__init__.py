"""The result buttons' other halves: the remix modal's submit and `/server buttons` (who may press)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.buttons._cog import Buttons

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    await bot.add_cog(Buttons(bot))
