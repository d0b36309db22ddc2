"""The one contract between the prompt parser, the job service and the worker.

A `JobSpec` is what `/imagine` text becomes after parsing: fully resolved, validated,
JSON-serialisable. The worker renders from it alone; the database stores it as JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sojourn.actions import Placement, Render

SEED_MAX = 4_294_967_295
IMAGES_PER_JOB = 4
# How many images a result shows: a 2×2 grid, or an upscale's one image.
IMAGES_ON: dict[Placement, int] = {"grid": IMAGES_PER_JOB, "single": 1}
IMAGE_WEIGHT_MAX = 3.0


class PromptPart(BaseModel):
    """One `text::weight` segment of a multi-prompt. `text` keeps A1111 `(word:1.2)` emphasis."""

    model_config = ConfigDict(frozen=True)

    text: str
    weight: float = 1.0


class SourceImage(BaseModel):
    """The stored full-size image a derived job (a button press) starts from."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    index: int  # 1-4 on a grid; 1 on a single (upscaled) image
    key: str  # storage key of the full-resolution PNG
    width: int
    height: int
    seed: int


class JobSpec(BaseModel):
    """A validated, fully resolved render request (one permutation, one repeat)."""

    model_config = ConfigDict(frozen=True)

    prompt: tuple[PromptPart, ...]
    negative_prompt: str = ""
    aspect: str = "1:1"  # as the user asked, reduced (e.g. "16:9")
    width: int = 1024
    height: int = 1024
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    steps: int = 30
    guidance: float = 7.25
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    stop: int = 100
    tile: bool = False
    weird: int = 0
    raw: bool = False
    style_suffix: str = ""  # resolved from the preset; empty with --style raw
    preset: str = "6"  # the `--v` / `--niji` preset name as in settings
    scheduler: str = "dpmpp_2m_karras"
    repeat: int = 1
    private: bool = False
    mode: Literal["fast", "relax"] = "fast"
    # An image prompt: the uploaded image (a storage key, set by the job service, never by the
    # parser) starts the denoising instead of pure noise; `--iw` weighs it (0-3, 1 by default).
    image_key: str | None = None
    image_weight: float = Field(default=1.0, ge=0.0, le=IMAGE_WEIGHT_MAX)
    # A derived job (a button under a result), set by the press service, never by the parser: the
    # worker function that renders it from `source` (`sojourn.actions.Render`, one per button kind).
    # None: a text-to-image grid (/imagine, 🔄).
    action: Render | None = None
    source: SourceImage | None = None
    strength: float = Field(default=0.0, ge=0.0, le=1.0)
    noise_level: int = Field(default=0, ge=0, le=999)
    zoom: float = Field(default=1.0, ge=1.0, le=4.0)
    images: int = Field(default=IMAGES_PER_JOB, ge=1, le=IMAGES_PER_JOB)  # 1 for an upscale

    def with_seed(self, seed: int) -> JobSpec:
        return self.model_copy(update={"seed": seed})

    def image_seeds(self) -> list[int]:
        """Seeds of images 1..`images`: N..N+3 (wrapping at 2**32 so every seed stays valid)."""
        if self.seed is None:
            raise ValueError("seed is not drawn yet")
        return [(self.seed + i) % (SEED_MAX + 1) for i in range(self.images)]


def image_prompt_strength(image_weight: float) -> float:
    """img2img strength for `--iw` (0-3): strength = 1 - iw / 4, so 1.0 at 0 down to 0.25 at 3.

    Strength is the share of the schedule that runs on top of the image prompt: at iw 1 (the
    default) the render starts a quarter of the way from noise to the picture, at iw 3 three
    quarters of the way. The floor of 0.25 stays above the refiner's hand-over at 0.2 of the
    schedule, so the base always denoises something.
    """
    return 1.0 - 0.25 * min(max(image_weight, 0.0), IMAGE_WEIGHT_MAX)
