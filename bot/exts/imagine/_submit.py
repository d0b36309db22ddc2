"""What /imagine does after acknowledging: check, store the image prompt, submit, post, confirm."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord

from bot.channels import check_can_post, origin_of
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


async def submit_imagine(
    bot: SojournBot, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None
) -> str:
    """Submit the prompt and post each job's message; returns the private confirmation."""
    check_can_post(interaction)
    channel = interaction.channel
    assert isinstance(channel, discord.abc.Messageable)
    image_key, animated = await image_prompt_key(bot, image) if image is not None else (None, False)
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
    # From here on the jobs are queued and paid for: nothing below may turn this into an error reply.
    await bot.delivery.announce(jobs, channel)
    held = sum(job.cost for job in jobs)
    ids = ", ".join(f"`{job.id}`" for job in jobs)
    noun = "job" if len(jobs) == 1 else "jobs"
    first_frame = " The attached image is animated: its first frame is the image prompt." if animated else ""
    return (
        f"Queued {len(jobs)} {noun} ({held} credits held): {ids}. /cancel stops one; /info shows your queue."
        + first_frame
    )
