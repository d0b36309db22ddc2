"""/imagine: a prompt (and optionally an image) in, a grid with buttons out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.imagine._cog import Imagine

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    await bot.add_cog(Imagine(bot))
