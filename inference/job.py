"""One job's render: what every renderer reads, and the one SDXL pipeline call they all make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from PIL import Image

from inference.conditioning import JobConditioning, encode_job_prompt
from inference.models import ModelRegistry
from inference.progress import ProgressHooks, StepReporter
from sojourn.spec import JobSpec

Rendered = tuple[list[Image.Image], StepReporter]  # the images, and the reporter that counted their steps


@dataclass(frozen=True)
class RenderJob:
    """The models, the spec and the caller's progress hooks of the job being rendered."""

    registry: ModelRegistry
    spec: JobSpec
    hooks: ProgressHooks = field(default_factory=ProgressHooks)

    def conditioning(self) -> tuple[JobConditioning, JobConditioning]:
        """The job's prompts as the base's and as the refiner's conditioning."""
        registry = self.registry
        return encode_job_prompt(
            registry.prompt_encoder, self.spec, base=registry.base, refiner=registry.refiner
        )

    def reporter(self, planned_steps: int) -> StepReporter:
        return self.hooks.reporter(planned_steps)

    def generators(self) -> list[torch.Generator]:
        """One CPU generator per image, so image k is the same as a run with its seed alone."""
        return image_generators(self.spec.image_seeds())

    def denoise(
        self,
        pipe: DiffusionPipeline,
        conditioning: JobConditioning,
        reporter: StepReporter,
        generators: list[torch.Generator],
        **inputs: Any,
    ) -> Any:
        """Call an SDXL pipeline with what every call of the job shares, plus its own `inputs`.

        Returns the result's images (latents with `output_type="latent"`); raises `JobCancelled`
        when a step saw the job cancelled.
        """
        size = (self.spec.height, self.spec.width)
        result = pipe(  # type: ignore[operator]  # every SDXL pipeline is callable; the base class is not
            **conditioning.as_kwargs(self.registry.device, self.registry.dtype),
            **inputs,
            guidance_scale=self.spec.guidance,
            generator=generators,
            callback_on_step_end=reporter,
            callback_on_step_end_tensor_inputs=["latents"],
            original_size=size,
            target_size=size,
        )
        reporter.raise_if_cancelled()
        return result.images


Renderer = Callable[[RenderJob, Image.Image], Rendered]


def image_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per seed."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
