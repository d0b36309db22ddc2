"""`/gallery`: the server's public results, one at a time, in a private message paged by buttons;
and the showcase channel, where results that reach the server's ❤ threshold are posted once.

`/server gallery` (its settings) is declared with the rest of `/server` in `bot.exts.buttons`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.gallery._cog import Gallery
from bot.exts.gallery._views import GALLERY_ITEMS

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    bot.add_dynamic_items(*GALLERY_ITEMS)
    await bot.add_cog(Gallery(bot))


async def teardown(bot: SojournBot) -> None:
    bot.remove_dynamic_items(*GALLERY_ITEMS)
