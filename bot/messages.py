"""What the bot's message for a job says at each point of its life, Midjourney style.

**a lighthouse --ar 16:9 --seed 7 …** - @alice Waiting to start… (position 3 in queue, ETA ~40 s)
**a lighthouse --ar 16:9 --seed 7 …** - @alice (35 %)
**a lighthouse --ar 16:9 --seed 7 …** - @alice            + the grid and the buttons
**a lighthouse --ar 16:9 --seed 7 …** - @alice — held for review … + a blurred preview, no buttons
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from db.models import Job
from sojourn.actions import BY_CODE
from sojourn.services.queue_info import QueueEstimate, describe_eta

MAX_CONTENT = 2000


def made_label(job: Job) -> str:
    """What the button that made the job says it made ("Image #2", "Zoom Out 2× by"); "" for /imagine."""
    action = BY_CODE.get(job.action) if job.action else None  # a retired action: no label
    return action.made_label(job.parent_image_index) if action is not None else ""


@dataclass(frozen=True)
class JobCard:
    """The parts of a job every message about it shows."""

    prompt: str  # canonical: every parameter resolved, seed included
    user_id: int
    image_prompt: bool = False
    label: str = ""  # what a button made: "Image #2", "Variations (Strong) by", "Zoom Out 2× by"

    @classmethod
    def of(cls, job: Job) -> JobCard:
        return cls(
            prompt=job.prompt,
            user_id=job.user_id,
            image_prompt=job.spec.get("image_key") is not None,
            label=made_label(job),
        )

    def _line(self, tail: str) -> str:
        marker = "🖼️ " if self.image_prompt else ""
        label = f"{self.label} " if self.label else ""
        suffix = f" - {label}<@{self.user_id}>{tail}"
        room = MAX_CONTENT - len(suffix) - len(marker) - 4  # the ** on each side
        prompt = discord.utils.escape_markdown(self.prompt)
        if len(prompt) > room:
            prompt = prompt[: room - 1].rstrip("\\") + "…"
        return f"{marker}**{prompt}**{suffix}"

    def waiting(self, estimate: QueueEstimate | None) -> str:
        if estimate is None:
            return self._line(" Waiting to start…")
        return self._line(
            f" Waiting to start… (position {estimate.position} in queue, "
            f"ETA {describe_eta(estimate.eta_seconds)})"
        )

    def progress(self, percent: int) -> str:
        return self._line(f" ({percent} %)")

    def done(self, shown_by: int | None = None) -> str:
        return self._line(f" (shown by <@{shown_by}>)" if shown_by and shown_by != self.user_id else "")

    def failed(self, error: str | None) -> str:
        return self._line(f" — failed: {error or 'the job did not finish'}")

    def cancelled(self) -> str:
        return self._line(" — cancelled; the credits were refunded")

    def held(self) -> str:
        return self._line(
            " — held for review by the image safety check. "
            "A moderator will look at it; you will see it here if approved."
        )

    def removed_by_check(self, cost: int) -> str:
        return self._line(
            f" — removed after the image safety check flagged it: the {cost} credits were refunded, "
            "and it counts as a strike."
        )
