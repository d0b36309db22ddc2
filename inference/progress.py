"""Progress, previews and cancellation, reported from inside the denoising loops."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from PIL import Image
from torch import nn

from inference.errors import JobCancelled

ProgressCallback = Callable[[int, bytes | None], None]

PREVIEW_EVERY = 5
PREVIEW_MAX_SIDE = 96


@dataclass(frozen=True)
class ProgressHooks:
    """The caller's progress and cancel hooks, for the reporter each render builds."""

    on_progress: ProgressCallback | None = None
    is_cancelled: Callable[[], bool] | None = None
    preview_every: int = PREVIEW_EVERY

    def reporter(self, planned_steps: int) -> StepReporter:
        return StepReporter(planned_steps, self.on_progress, self.is_cancelled, self.preview_every)

    def raise_if_cancelled(self) -> None:
        if self.is_cancelled is not None and self.is_cancelled():
            raise JobCancelled()


class StepReporter:
    """`callback_on_step_end` for every pipeline of a job: overall progress, previews, cancellation."""

    def __init__(
        self,
        planned_steps: int,
        on_progress: ProgressCallback | None,
        is_cancelled: Callable[[], bool] | None,
        preview_every: int,
    ) -> None:
        self.planned_steps = max(planned_steps, 1)
        self.on_progress = on_progress
        self.is_cancelled = is_cancelled
        self.preview_every = preview_every
        self.done = 0
        self.percent = 0
        self.cancelled = False

    def __call__(
        self, pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        if self._step_done(tensors["latents"]):
            pipe._interrupt = True  # the pipelines' own way to stop after this step
        return tensors

    def legacy_callback(self, step: int, timestep: Any, latents: torch.Tensor) -> None:
        """The old `callback=` hook, for pipelines without `callback_on_step_end` or `interrupt`
        (Stable unCLIP): there the only way to stop is to raise out of the denoising loop."""
        if self._step_done(latents):
            raise JobCancelled()

    def raise_if_cancelled(self) -> None:
        """After a pipeline call: end the job if a step saw it cancelled."""
        if self.cancelled:
            raise JobCancelled()

    def _step_done(self, latents: torch.Tensor) -> bool:
        """Count a step, report it; True when the job was cancelled meanwhile."""
        self.done += 1
        self.percent = min(100, self.done * 100 // self.planned_steps)
        if self.on_progress is not None:
            preview = None
            if self.preview_every > 0 and (self.done % self.preview_every == 0 or self.percent == 100):
                preview = latent_preview_png(latents[0])
            self.on_progress(self.percent, preview)
        if self.is_cancelled is not None and self.is_cancelled():
            self.cancelled = True
        return self.cancelled

    def finish(self) -> None:
        """Report 100 % if the plan and the pipelines disagreed on the step count."""
        if self.on_progress is not None and self.percent < 100:
            self.on_progress(100, None)


# An approximate linear map from SDXL latent channels to RGB, good enough for a thumbnail.
_LATENT_TO_RGB = torch.tensor(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]
)


def latent_preview_png(latents: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """A small PNG of one image's latents (C×H×W) by a linear projection: no VAE, ~1 ms."""
    latents = latents.detach().float().cpu()
    height, width = latents.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = nn.functional.interpolate(latents[None], size=size, mode="area")[0]
    if small.shape[0] == _LATENT_TO_RGB.shape[0]:
        rgb = torch.einsum("chw,cr->rhw", small, _LATENT_TO_RGB)
        rgb = (rgb + 1) / 2
    else:  # another latent space: show its first three channels, stretched
        rgb = small[:3]
        rgb = (rgb - rgb.amin()) / (rgb.amax() - rgb.amin() + 1e-6)
    pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
