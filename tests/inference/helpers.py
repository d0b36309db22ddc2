"""Shared by the render tests: specs, source images, pixels, and a cancel switch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from sojourn.actions import Render
from sojourn.spec import JobSpec, PromptPart, SourceImage

FAST = {"width": 256, "height": 256, "steps": 6}  # for tests where resolution and step count don't matter
# What the press service sets on each action's spec (the defaults of `ButtonSettings`).
ACTION_FIELDS: dict[Render, dict[str, object]] = {
    Render.UPSCALE: {"images": 1, "strength": 0.3},
    Render.VARY_STRONG: {"strength": 0.3, "noise_level": 100},
    Render.VARY_SUBTLE: {"strength": 0.35},
    Render.ZOOM_OUT: {"zoom": 2.0, "strength": 1.0},
}


def make_spec(*texts: str, **fields: object) -> JobSpec:
    """A spec from prompt parts written `text` or `text::weight`; seed 7 unless given."""
    parts = []
    for text in texts or ("a lighthouse",):
        body, _, weight = text.partition("::")
        parts.append(PromptPart(text=body, weight=float(weight or 1)))
    return JobSpec(prompt=tuple(parts), **{"seed": 7, **fields})  # type: ignore[arg-type]


def derived_spec(action: Render, source: Image.Image, **fields: object) -> JobSpec:
    """A derived job as the job service makes it: the output size is 2× the source for an upscale."""
    scale = 2 if action == Render.UPSCALE else 1
    image = SourceImage(
        job_id="0" * 32, index=2, key="jobs/x/2.png", width=source.width, height=source.height, seed=8
    )
    spec = {
        "prompt": (PromptPart(text="a (lighthouse:1.2) at dusk"),),
        "negative_prompt": "fog",
        "seed": 8,
        "steps": 6,
        "width": source.width * scale,
        "height": source.height * scale,
        "action": action,
        "source": image,
        **ACTION_FIELDS[action],
        **fields,
    }
    return JobSpec(**spec)  # type: ignore[arg-type]


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, 0 * x + y, 255 - (x + y) / 2], axis=2).astype(np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def cancel_after(calls: int) -> Callable[[], bool]:
    """An `is_cancelled` that says yes from its call number `calls + 1` on."""
    seen = 0

    def is_cancelled() -> bool:
        nonlocal seen
        seen += 1
        return seen > calls

    return is_cancelled
