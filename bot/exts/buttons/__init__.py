"""The buttons under every result: the views, what a press does, the remix modal, `/server buttons`.

Other modules post results with these views: `result_view` (and the builders) is this
package's public surface; the rest is private to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.buttons._cog import Buttons
from bot.exts.buttons._views import ResultButton, grid_view, result_view, single_image_view

if TYPE_CHECKING:
    from bot.bot import SojournBot

__all__ = ["grid_view", "result_view", "single_image_view"]


async def setup(bot: SojournBot) -> None:
    bot.add_dynamic_items(ResultButton)
    await bot.add_cog(Buttons(bot))


async def teardown(bot: SojournBot) -> None:
    bot.remove_dynamic_items(ResultButton)
