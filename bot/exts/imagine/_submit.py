"""What /imagine does after acknowledging: check, store the image prompt, submit; then confirm, post."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import discord

from bot.channels import check_can_post, origin_of
from db.models import Job
from sojourn.errors import UserError
from sojourn.services.image_prompts import check_declared, read_image_prompt, store_image_prompt
from sojourn.services.submission import submit_prompt

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def image_prompt_key(bot: SojournBot, attachment: discord.Attachment) -> tuple[str, bool]:
    """Validate the attachment (declared type and size, then its bytes) and store it.

    Returns its storage key, and whether it was an animation (of which the first frame is kept).
    """
    limits = bot.settings.bot
    check_declared(attachment.content_type, attachment.size, max_bytes=limits.max_image_bytes)
    try:
        data = await attachment.read()
    except discord.HTTPException:
        raise UserError("I couldn't download the attached image from Discord: try again.") from None
    image = await asyncio.to_thread(
        read_image_prompt, data, max_bytes=limits.max_image_bytes, max_side=limits.max_image_side
    )
    return await asyncio.to_thread(store_image_prompt, bot.storage, image), image.animated


@dataclasses.dataclass(frozen=True)
class Submitted:
    """An /imagine's queued, paid-for jobs."""

    jobs: list[Job]
    animated: bool  # its image prompt was an animation (the first frame was kept)

    def confirmation(self) -> str:
        held = sum(job.cost for job in self.jobs)
        ids = ", ".join(f"`{job.id}`" for job in self.jobs)
        noun = "job" if len(self.jobs) == 1 else "jobs"
        first_frame = (
            " The attached image is animated: its first frame is the image prompt." if self.animated else ""
        )
        return (
            f"Queued {len(self.jobs)} {noun} ({held} credits held): {ids}. /cancel stops one; "
            "/info shows your queue." + first_frame
        )


async def submit_imagine(
    bot: SojournBot, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None
) -> Submitted:
    """Check where it was asked, store the image prompt, submit; raises `UserError`s to answer."""
    check_can_post(interaction)
    image_key, animated = await image_prompt_key(bot, image) if image is not None else (None, False)
    # Only the database work takes a slot: the image's download above and the posts after this
    # wait on Discord, and must not keep others' submissions waiting (`SojournBot.submission_slots`).
    async with bot.submission_slots:
        jobs = await submit_prompt(
            bot.sessions,
            bot.settings,
            bot.queue,
            user_id=interaction.user.id,
            text=prompt,
            origin=origin_of(interaction),
            rules=bot.rules,
            image_key=image_key,
        )
    return Submitted(jobs, animated)
