"""`/mod`: bans, credits, the word filter, the queue, held results, appeals, the log and the
server's moderation settings; and the Appeal button members get under a blocked prompt.

Every command and button hands the interaction's member (`actor_of`) to a moderation service,
which decides whether they moderate here; Discord's `default_permissions` only hide `/mod`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.moderation._cog import Moderation
from bot.exts.moderation._views import MODERATION_ITEMS

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    bot.add_dynamic_items(*MODERATION_ITEMS)
    await bot.add_cog(Moderation(bot))


async def teardown(bot: SojournBot) -> None:
    bot.remove_dynamic_items(*MODERATION_ITEMS)
