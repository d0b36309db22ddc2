"""The gallery's ❤ on a result: one per person and result, as the gallery counts them."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Favorite
from sojourn.actions import FAVORITE
from sojourn.services import credits
from sojourn.services.buttons import Press, load_pressable_job
from sojourn.services.like_counts import lock_likes, recount_likes
from sojourn.services.moderation import bans
from sojourn.services.submission import Origin


async def toggle_like(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, presser_id: int, origin: Origin
) -> tuple[bool, int]:
    """Like the pressed result, or no longer like it; returns (liked now, its ❤ in all).

    A like is a favorite of the image the result shows (a grid's grid, an upscale's image). If
    the presser already favorited any of its images, the press takes every one of them back:
    the gallery counts a person once per result, so half a take-back would change nothing.
    """
    async with sessions.begin() as session:
        # Image 1 exists on every result: the checks (missing, private, held, removed) are a ❤'s.
        job = await load_pressable_job(session, Press(FAVORITE, job_id, 1, presser_id, origin))
        await credits.ensure_user(session, presser_id)
        await bans.check_not_banned(session, presser_id, origin.guild_id)
        await lock_likes(session, job.id)
        taken_back = await session.execute(
            delete(Favorite).where(Favorite.user_id == presser_id, Favorite.job_id == job.id)
        )
        liked = taken_back.rowcount == 0  # type: ignore[attr-defined]
        if liked:
            shown = 0 if any(image.index == 0 for image in job.images) else 1
            session.add(Favorite(user_id=presser_id, job_id=job.id, image_index=shown))
        likes = await recount_likes(session, job.id)
    return liked, likes
