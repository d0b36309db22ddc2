"""The text of job messages, and the grid upload's fallback (no Discord needed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.messages import MAX_CONTENT, JobCard
from bot.uploads import grid_upload
from sojourn.services.queue_info import QueueEstimate


def test_each_stage_says_where_the_job_is() -> None:
    card = JobCard(prompt="a fox --ar 1:1 --seed 7", user_id=42)
    assert card.waiting(QueueEstimate(position=3, eta_seconds=40)) == (
        "**a fox --ar 1:1 --seed 7** - <@42> Waiting to start… (position 3 in queue, ETA ~40 s)"
    )
    assert card.progress(35) == "**a fox --ar 1:1 --seed 7** - <@42> (35 %)"
    assert card.done() == "**a fox --ar 1:1 --seed 7** - <@42>"
    assert card.done(shown_by=7) == "**a fox --ar 1:1 --seed 7** - <@42> (shown by <@7>)"
    assert card.cancelled().endswith("— cancelled; the credits were refunded")
    assert JobCard(prompt="x", user_id=1, image_prompt=True).done().startswith("🖼️ **x**")


def test_markdown_in_prompts_is_shown_literally_and_long_prompts_fit() -> None:
    assert JobCard(prompt="a *bold* __fox__", user_id=1).done() == r"**a \*bold\* \_\_fox\_\_** - <@1>"
    long = JobCard(prompt="word " * 600, user_id=123456789012345678)
    content = long.waiting(QueueEstimate(position=1, eta_seconds=30))
    assert len(content) <= MAX_CONTENT and content.endswith("(position 1 in queue, ETA ~30 s)")
    assert "…**" in content


def test_a_grid_over_the_upload_limit_goes_as_a_jpeg() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    png = buffer.getvalue()

    assert grid_upload(lambda key: png, "jobs/x/grid.png", limit=len(png)) == (png, "grid.png")
    data, name = grid_upload(lambda key: png, "jobs/x/grid.png", limit=len(png) - 1)
    assert name == "grid.jpg" and Image.open(io.BytesIO(data)).format == "JPEG"
    assert Image.open(io.BytesIO(data)).size == (256, 256)
