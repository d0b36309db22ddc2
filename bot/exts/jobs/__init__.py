"""/show, /cancel and /delete: a past result re-posted with live buttons; a job stopped and refunded;
one of your results taken down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.jobs._cog import Jobs

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def setup(bot: SojournBot) -> None:
    await bot.add_cog(Jobs(bot))
