"""Remix mode: the prompt, editable in a modal before a remixable button makes its job.

The modal's custom_id carries the action, the job and the image (`sj:m:<code>:<job hex>:<image or 0>`),
so its submit is answered statelessly by the cog's listener from the custom_id and the edited
text: a bot restart while the modal is open loses nothing.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import discord

from sojourn.actions import REMIXABLE, ButtonAction, codes_pattern
from sojourn.spec import IMAGES_PER_JOB

REMIX_MODAL_TEMPLATE = re.compile(
    rf"sj:m:(?P<action>{codes_pattern(REMIXABLE)}):(?P<job>[0-9a-f]{{32}}):(?P<index>[0-{IMAGES_PER_JOB}])"
)
REMIX_PROMPT_ID = "prompt"
MAX_REMIX_PROMPT = 2000
MAX_TITLE = 45  # Discord's limit on a modal's title


def remix_custom_id(action: ButtonAction, job_id: uuid.UUID, index: int | None) -> str:
    return f"sj:m:{action.code}:{job_id.hex}:{index or 0}"


class RemixModal(discord.ui.Modal):
    """The pressed job's prompt, parameters included, for editing (remix mode)."""

    def __init__(self, action: ButtonAction, job_id: uuid.UUID, index: int | None, prompt: str) -> None:
        super().__init__(
            title=f"Remix: {action.name}"[:MAX_TITLE],
            custom_id=remix_custom_id(action, job_id, index),
            # Only bounds how long discord.py keeps this object; the listener answers later submits.
            timeout=15 * 60,
        )
        self.add_item(
            discord.ui.TextInput(
                label="Prompt (edit it, parameters included)",
                style=discord.TextStyle.paragraph,
                default=prompt[:MAX_REMIX_PROMPT],
                max_length=MAX_REMIX_PROMPT,
                custom_id=REMIX_PROMPT_ID,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        return None  # answered by the cog's listener, which also works after a restart


def submitted_remix_text(data: dict[str, Any]) -> str | None:
    """The prompt typed into a remix modal, from the raw submit payload (None if it is not there)."""
    for row in data.get("components", []):
        for component in row.get("components", [row.get("component")] if "component" in row else []):
            if isinstance(component, dict) and component.get("custom_id") == REMIX_PROMPT_ID:
                value = component.get("value")
                return str(value) if value is not None else None
    return None
