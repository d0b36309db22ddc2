"""Text to image, from noise or from an image prompt: the SDXL ensemble of experts.

The base denoises the first 80 % of the schedule and hands its latents to the refiner for the
rest. With an image prompt (or a source image) the base starts from that picture instead of pure
noise: img2img through the base's own modules.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from PIL import Image

from inference.geometry import fit_image
from inference.job import Rendered, RenderJob
from inference.planning import REFINER_START, img2img_steps, plan_steps
from inference.tiling import seamless_tiling
from sojourn.spec import image_prompt_strength


def text_to_image(job: RenderJob, init_image: Image.Image | None) -> Rendered:
    """The job's grid at `spec.width`×`spec.height`; an image prompt (`init_image`) starts it at
    `image_prompt_strength(spec.image_weight)` instead of from noise."""
    if init_image is None:
        return ensemble(job)
    return ensemble(job, init_image=init_image, strength=image_prompt_strength(job.spec.image_weight))


def ensemble(job: RenderJob, *, init_image: Image.Image | None = None, strength: float = 1.0) -> Rendered:
    """Base then refiner, from noise or (img2img at `strength`) from `init_image`."""
    registry, spec = job.registry, job.spec
    base, refiner = registry.base, registry.refiner
    first = registry.base_img2img if init_image is not None else base
    registry.use_scheduler(first, spec.scheduler)
    registry.use_scheduler(refiner, spec.scheduler)
    plan = plan_steps(first.scheduler, spec.steps, spec.stop)
    base_conditioning, refiner_conditioning = job.conditioning()
    image_input: dict[str, Any] = {"width": spec.width, "height": spec.height}
    base_steps = plan.base_steps
    if init_image is not None:
        image_input = {"image": fit_image(init_image, spec.width, spec.height), "strength": strength}
        base_steps = img2img_steps(first.scheduler, spec.steps, strength, plan.base_end)
    reporter = job.reporter(base_steps + plan.refiner_steps)
    # One set of generators through both experts: the refiner continues where the base left them.
    generators = job.generators()
    tiling = seamless_tiling([base.unet, refiner.unet, base.vae]) if spec.tile else nullcontext()
    with tiling:
        images = job.denoise(
            first,
            base_conditioning,
            reporter,
            generators,
            **image_input,
            num_inference_steps=spec.steps,
            denoising_end=plan.base_end,
            output_type="latent" if plan.refine else "pil",
        )
        if plan.refine:
            images = job.denoise(
                refiner,
                refiner_conditioning,
                reporter,
                generators,
                image=images,
                num_inference_steps=spec.steps,
                denoising_start=REFINER_START,
                denoising_end=plan.refiner_end,
            )
    return list(images), reporter
