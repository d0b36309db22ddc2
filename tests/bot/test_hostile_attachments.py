"""Hostile image prompts through /imagine: refused privately before anything is charged or stored.

The files and the behaviour chosen for each are described in tests/services/test_hostile_attachments.py.
simcord declares an attachment's content type from its file name, as Discord does, so "drawing.png"
holding an SVG arrives as image/png and "photo.jpg" holding a PNG as image/jpeg.
"""

from __future__ import annotations

import mimetypes

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import LedgerEntry
from sojourn.settings import Settings
from tests.bot.conftest import GatedQueue, World, balance_of, jobs_of
from tests.services.test_hostile_attachments import HOSTILE_FILES, assert_no_internals


async def ledger_entries(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)
        return int(await session.scalar(query) or 0)


def stored_prompts(settings: Settings) -> set[str]:
    folder = settings.resolved_storage_dir / "prompts"
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


async def test_each_hostile_attachment_is_refused_privately_before_anything_is_charged(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings
) -> None:
    stored_before = stored_prompts(bot_settings)
    refused = [file for file in HOSTILE_FILES if file.refusal is not None]
    for file in refused:
        assert mimetypes.guess_type(file.filename)[0] == file.content_type, file.case

        result = await world.alice.slash(
            world.channel, "imagine", prompt="a cat --q .25", image=(file.filename, file.data)
        )

        assert result.ephemeral and result.response is not None, file.case
        assert result.response.content == file.refusal, file.case
        assert_no_internals(result.response.content)
    world.env.raise_errors()
    assert world.channel.history() == []  # nothing public
    assert await jobs_of(bot_sessions, world.alice.id) == []
    # Not even today's free credits moved: the attachment is checked before the user is touched.
    assert await balance_of(bot_sessions, world.alice.id) == 0
    assert await ledger_entries(bot_sessions, world.alice.id) == 0
    assert stored_prompts(bot_settings) == stored_before


async def test_accepted_attachments_queue_one_job_each_and_an_animation_says_which_frame(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    queue.hold()  # no worker needed: the jobs stay queued
    accepted = [file for file in HOSTILE_FILES if file.refusal is None]
    for file in accepted:
        result = await world.alice.slash(
            world.channel, "imagine", prompt=f"{file.case} --q .25", image=(file.filename, file.data)
        )

        assert result.response is not None and result.response.content.startswith("Queued 1 job"), file.case
        note = "The attached image is animated: its first frame is the image prompt."
        assert result.response.content.endswith(note) == ("animated" in file.case), file.case
    world.env.raise_errors()
    jobs = await jobs_of(bot_sessions, world.alice.id)
    assert len(jobs) == len(accepted)
    assert all(str(job.spec["image_key"]).startswith("prompts/") for job in jobs)
