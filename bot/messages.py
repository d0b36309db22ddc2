"""What the bot's message for a job says at each point of its life, Midjourney style.

**a lighthouse --ar 16:9 --seed 7 …** - @alice Waiting to start… (position 3 in queue, ETA ~40 s)
**a lighthouse --ar 16:9 --seed 7 …** - @alice (35 %)
**a lighthouse --ar 16:9 --seed 7 …** - @alice            + the grid and the buttons
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord

from sojourn.services.queue_info import QueueEstimate, describe_eta

MAX_CONTENT = 2000


@dataclass(frozen=True)
class JobCard:
    """The parts of a job every message about it shows."""

    prompt: str  # canonical: every parameter resolved, seed included
    user_id: int
    image_prompt: bool = False

    @classmethod
    def of(cls, prompt: str, user_id: int, spec: dict[str, Any]) -> JobCard:
        return cls(prompt=prompt, user_id=user_id, image_prompt=spec.get("image_key") is not None)

    def _line(self, tail: str) -> str:
        marker = "🖼️ " if self.image_prompt else ""
        suffix = f" - <@{self.user_id}>{tail}"
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
