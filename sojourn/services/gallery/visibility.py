"""The one visibility rule: what the galleries show, and who may open a result's page.

A result is in the galleries only if all hold: it succeeded; it is public (`--public`, the
default; `--private`/`--stealth`, `/settings` or a later switch make it private); it was made in
a server channel @everyone could view that is not age-restricted; its server has not turned the
gallery off (`/server gallery web:off`); and moderation neither removed nor holds it. The Discord
side and the web side both filter with `visible_in_gallery()`; nothing else restates the rule.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, exists, literal_column, not_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased, selectinload

from db.models import WITHHELD, GuildSettings, HeldResult, Job, JobStatus
from sojourn.errors import JobNotFound


def is_private() -> ColumnElement[bool]:
    """Made private (`--private`, `/settings`), or switched to private since (`set_private`)."""
    return Job.private.is_(true())


def is_held() -> ColumnElement[bool]:
    """Held by the safety check (or removed by it) and not approved: moderators only."""
    held = aliased(HeldResult)
    return exists().where(held.job_id == Job.id, held.status.in_(WITHHELD))


def visible_in_gallery() -> ColumnElement[bool]:
    """True for a `Job` row the galleries may show (every rule, in one condition).

    The `jobs` columns are written as `db.models.GALLERY_ROWS` writes them (literals, bare
    booleans), so the database sees that the gallery's partial indexes hold exactly these rows.
    """
    server = aliased(GuildSettings)  # aliased, as for every table here: a caller may join the table
    return and_(
        Job.status == literal_column(f"'{JobStatus.SUCCEEDED.value}'"),
        Job.removed_at.is_(None),
        Job.guild_id.is_not(None),  # a direct message is nobody else's
        Job.channel_public,
        not_(Job.age_restricted),
        not_(Job.private),
        not_(exists().where(server.guild_id == Job.guild_id, server.web_gallery.is_(False))),
        not_(is_held()),
    )


async def can_see(
    session: AsyncSession, job_id: uuid.UUID, viewer_id: int | None, is_moderator: bool = False
) -> Job | None:
    """The job for a result's page (images loaded), or None: a private result reads as missing.

    Anyone sees what the galleries show; its owner also sees it private or outside them (not held
    or removed); a moderator of its server (the caller checks that for `job.guild_id`) sees all.
    """
    row = (
        await session.execute(
            select(Job, visible_in_gallery(), is_held())
            .where(Job.id == job_id, Job.status == JobStatus.SUCCEEDED)
            .options(selectinload(Job.images))
        )
    ).one_or_none()
    if row is None:
        return None
    job, public, held = row
    if is_moderator or public:
        return job
    if viewer_id is not None and viewer_id == job.user_id and not held and job.removed_at is None:
        return job
    return None


async def set_private(
    sessions: async_sessionmaker[AsyncSession], user_id: int, job_id: uuid.UUID, private: bool
) -> None:
    """Its owner makes a result private (out of every gallery at once) or public again."""
    async with sessions.begin() as session:
        job = await session.get(Job, job_id, with_for_update=True, options=[selectinload(Job.images)])
        if job is None or job.user_id != user_id:
            raise JobNotFound(str(job_id))  # someone else's job reads as missing: it may be private
        job.spec = {**job.spec, "private": private}
        job.private = private
        for image in job.images:
            image.public = not private
