"""/prefer: personal parameter macros (`--mystyle`) and a suffix added to every prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.prefer._cog import Prefer

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    await bot.add_cog(Prefer(bot))
