"""Derived jobs, the buttons under a result: upscale, strong and subtle variations, zoom out.

Each starts from the stored source image (`spec.source`) and renders `spec.width`×`spec.height`,
the output size. All but one run on modules the worker already holds: the refiner, and the base
through its img2img and inpainting views. Vary (Strong) needs Stable unCLIP, an SD 2.1 model with
its own encoders, UNet and VAE; the refiner then brings its images to the job's resolution.
`render_job_images` is the worker's one entry point, text-to-image grids included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from inference.errors import JobCancelled
from inference.pipelines import (
    PREVIEW_EVERY,
    REFINER_START,
    JobConditioning,
    ModelRegistry,
    ProgressCallback,
    _img2img_base_steps,
    _out_of_memory_as_error,
    _StepReporter,
    encode_job_prompt,
    fit_image_prompt,
    image_generators,
    render_grid_images,
    render_with_base_and_refiner,
    vae_tiling,
)
from sojourn.prompt import emphasis_segments
from sojourn.spec import JobSpec

UNCLIP_PIXELS = 768 * 768  # Stable unCLIP 2.1's training resolution; larger only costs time
ZOOM_OVERLAP = 8  # px of the pasted source that the inpainting mask covers, so the seam blends


@dataclass(frozen=True)
class _Hooks:
    """The caller's progress and cancel hooks, for the reporter each action builds."""

    on_progress: ProgressCallback | None
    is_cancelled: Callable[[], bool] | None
    preview_every: int

    def reporter(self, planned_steps: int) -> _StepReporter:
        return _StepReporter(planned_steps, self.on_progress, self.is_cancelled, self.preview_every)


def render_job_images(
    registry: ModelRegistry,
    spec: JobSpec,
    *,
    on_progress: ProgressCallback | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    preview_every: int = PREVIEW_EVERY,
    init_image: Image.Image | None = None,
    source_image: Image.Image | None = None,
) -> list[Image.Image]:
    """The job's images: a text-to-image grid, or what its button asks of `source_image`."""
    check_job_inputs(spec, init_image=init_image, source_image=source_image)
    hooks = _Hooks(on_progress, is_cancelled, preview_every)
    if spec.action is None:
        return render_grid_images(registry, spec, **_as_kwargs(hooks), init_image=init_image)
    assert source_image is not None  # checked above
    source = source_image.convert("RGB")
    if spec.action == "vary_subtle" and spec.strength > 1 - REFINER_START:
        # The txt2img path's ensemble of experts, from the source: base img2img, then the refiner.
        return render_with_base_and_refiner(
            registry, spec, **_as_kwargs(hooks), init_image=source, strength=spec.strength
        )
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled()
    render = {
        "upscale": _upscale,
        "vary_strong": _vary_strong,
        "vary_subtle": _refine_only,  # too light a touch to reach the base's share of the schedule
        "zoom_out": _zoom_out,
    }[spec.action]
    with torch.inference_mode(), _out_of_memory_as_error(registry.device):
        images, reporter = render(registry, spec, source, hooks)
    reporter.finish()
    return images


def check_job_inputs(
    spec: JobSpec, *, init_image: Image.Image | None, source_image: Image.Image | None
) -> None:
    """Fail fast, before any model work, on a spec or inputs the pipelines cannot run."""
    if spec.seed is None:
        raise ValueError("the job has no seed yet: the job service draws it before queuing")
    if spec.width % 8 or spec.height % 8:
        raise ValueError(f"width and height must be multiples of 8, not {spec.width}×{spec.height}")
    if spec.action is None:
        if source_image is not None:
            raise ValueError("a source image was given for a text-to-image job (spec.action is None)")
        return
    if spec.source is None:
        raise ValueError(f"a {spec.action} job needs spec.source, the image its button was under")
    if source_image is None:
        raise ValueError(f"a {spec.action} job needs the source image ({spec.source.key}), loaded")
    if init_image is not None:
        raise ValueError(f"a {spec.action} job starts from its source image, not an image prompt")
    if spec.action == "upscale" and spec.images != 1:
        raise ValueError(f"an upscale renders one image, not {spec.images}")
    if spec.action in ("upscale", "vary_strong", "vary_subtle") and spec.strength <= 0:
        raise ValueError(f"a {spec.action} job needs a strength above 0 (the img2img pass)")
    if spec.action == "zoom_out" and spec.zoom <= 1:
        raise ValueError(f"zoom out needs a zoom above 1, not {spec.zoom}")


def _as_kwargs(hooks: _Hooks) -> dict[str, object]:
    return {
        "on_progress": hooks.on_progress,
        "is_cancelled": hooks.is_cancelled,
        "preview_every": hooks.preview_every,
    }


# ---------------------------------------------------------------------------------------------------
# The actions (called under inference mode; each returns its images and its reporter)
# ---------------------------------------------------------------------------------------------------


def _upscale(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, hooks: _Hooks
) -> tuple[list[Image.Image], _StepReporter]:
    """2×: Lanczos to the output size, then the refiner's img2img adds the detail (same seed)."""
    enlarged = fit_image_prompt(source, spec.width, spec.height)
    # One pass over the whole image with a tiled VAE, not tiled diffusion: at ~0.3 strength the
    # UNet's activations at 2048 px (4096 px) fit, the VAE's full-resolution ones do not, and one
    # pass keeps the whole picture in view, so there are no seams to hide between denoised tiles.
    with vae_tiling(registry.refiner.vae):
        return _refiner_pass(registry, spec, [enlarged], hooks)


def _vary_strong(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, hooks: _Hooks
) -> tuple[list[Image.Image], _StepReporter]:
    """Stable unCLIP on the source's CLIP image embedding and the prompt, then the refiner."""
    unclip, refiner = registry.unclip, registry.refiner
    registry.use_scheduler(unclip, spec.scheduler)
    registry.use_scheduler(refiner, spec.scheduler)
    _, conditioning = encode_job_prompt(registry, spec)
    seeds = spec.image_seeds()
    unclip.scheduler.set_timesteps(spec.steps)
    unclip_steps = len(unclip.scheduler.timesteps)
    refiner_steps = _img2img_base_steps(refiner.scheduler, refine_steps(spec), spec.strength, None)
    reporter = hooks.reporter(unclip_steps + refiner_steps)

    # One embedding row per image, so `noise_level` noises each with its own generator: image k
    # is then the same as a run with its seed alone (a PIL image would share one noised row).
    pixels = unclip.feature_extractor(images=source, return_tensors="pt").pixel_values
    embedding = unclip.image_encoder(pixels.to(registry.device, unclip.image_encoder.dtype)).image_embeds
    width, height = unclip_size(spec.width, spec.height)
    positive, negative = plain_prompts(spec)
    result = unclip(
        image_embeds=embedding.expand(len(seeds), -1),
        prompt=[positive] * len(seeds),
        negative_prompt=[negative] * len(seeds),
        width=width,
        height=height,
        num_inference_steps=spec.steps,
        guidance_scale=spec.guidance,
        noise_level=spec.noise_level,
        generator=image_generators(seeds),
        callback=reporter.legacy_callback,  # raises JobCancelled: unCLIP has no `interrupt`
        callback_steps=1,
    )
    variations = [fit_image_prompt(image, spec.width, spec.height) for image in result.images]
    return _refine(registry, spec, variations, conditioning, reporter), reporter


def _refine_only(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, hooks: _Hooks
) -> tuple[list[Image.Image], _StepReporter]:
    """The refiner's img2img of the source alone (a strength within the refiner's share)."""
    fitted = fit_image_prompt(source, spec.width, spec.height)
    return _refiner_pass(registry, spec, [fitted] * len(spec.image_seeds()), hooks)


def _refiner_pass(
    registry: ModelRegistry, spec: JobSpec, images: list[Image.Image], hooks: _Hooks
) -> tuple[list[Image.Image], _StepReporter]:
    """The refiner's img2img at `spec.strength` over `images`, with its own progress reporter."""
    registry.use_scheduler(registry.refiner, spec.scheduler)
    _, conditioning = encode_job_prompt(registry, spec)
    steps = _img2img_base_steps(registry.refiner.scheduler, refine_steps(spec), spec.strength, None)
    reporter = hooks.reporter(steps)
    return _refine(registry, spec, images, conditioning, reporter), reporter


def _zoom_out(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, hooks: _Hooks
) -> tuple[list[Image.Image], _StepReporter]:
    """The source shrunk on a larger canvas; the base (as an inpainting pipeline) paints the border."""
    inpaint = registry.inpaint
    registry.use_scheduler(inpaint, spec.scheduler)
    conditioning, _ = encode_job_prompt(registry, spec)
    canvas, mask, box = zoom_out_canvas(source, spec.width, spec.height, spec.zoom)
    reporter = hooks.reporter(_img2img_base_steps(inpaint.scheduler, spec.steps, 1.0, None))
    size = (spec.height, spec.width)
    result = inpaint(
        **conditioning.as_kwargs(registry.device, registry.dtype),
        image=canvas,
        mask_image=mask,
        width=spec.width,
        height=spec.height,
        strength=1.0,
        num_inference_steps=spec.steps,
        guidance_scale=spec.guidance,
        generator=image_generators(spec.image_seeds()),
        callback_on_step_end=reporter,
        callback_on_step_end_tensor_inputs=["latents"],
        original_size=size,
        target_size=size,
    )
    if reporter.cancelled:
        raise JobCancelled()
    # The VAE round trip blurs the kept centre a little; the source's own pixels go back on top.
    return [paste_centre(image, canvas, box) for image in result.images], reporter


def _refine(
    registry: ModelRegistry,
    spec: JobSpec,
    images: list[Image.Image],
    conditioning: JobConditioning,
    reporter: _StepReporter,
) -> list[Image.Image]:
    """The refiner's img2img at `spec.strength` over `images` (one per seed), at the output size."""
    size = (spec.height, spec.width)
    result = registry.refiner(
        image=images,
        **conditioning.as_kwargs(registry.device, registry.dtype),
        strength=spec.strength,
        num_inference_steps=refine_steps(spec),
        guidance_scale=spec.guidance,
        generator=image_generators(spec.image_seeds()),
        callback_on_step_end=reporter,
        callback_on_step_end_tensor_inputs=["latents"],
        original_size=size,
        target_size=size,
    )
    if reporter.cancelled:
        raise JobCancelled()
    return list(result.images)


# ---------------------------------------------------------------------------------------------------
# Geometry and prompts
# ---------------------------------------------------------------------------------------------------


def refine_steps(spec: JobSpec) -> int:
    """The schedule an img2img pass at `spec.strength` is cut from: the job's steps, or more when
    that would leave it no step at all (img2img runs `int(steps × strength)` of them)."""
    steps = spec.steps
    while int(steps * spec.strength) < 1:
        steps += 1
    return steps


def unclip_size(width: int, height: int) -> tuple[int, int]:
    """The output's aspect at no more than unCLIP's 768² pixels, in multiples of 64."""
    scale = min(1.0, math.sqrt(UNCLIP_PIXELS / (width * height)))
    return max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64)


def zoom_out_canvas(
    source: Image.Image, width: int, height: int, zoom: float
) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """The canvas, the mask (white: paint) and the box (left, top, right, bottom) of the source.

    The source, fitted into the output and shrunk by `zoom`, sits in the centre; its edge pixels
    extend outwards to fill the border, so the colours there are plausible before inpainting.
    The mask covers the border and `ZOOM_OVERLAP` px of the source's edge.
    """
    scale = min(width / source.width, height / source.height) / zoom
    inner_w, inner_h = max(1, round(source.width * scale)), max(1, round(source.height * scale))
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    shrunk = np.asarray(source.convert("RGB").resize((inner_w, inner_h), Image.Resampling.LANCZOS))
    padding = ((top, height - inner_h - top), (left, width - inner_w - left), (0, 0))
    canvas = Image.fromarray(np.pad(shrunk, padding, mode="edge"))
    mask = np.full((height, width), 255, dtype=np.uint8)
    keep = _inset((left, top, left + inner_w, top + inner_h), ZOOM_OVERLAP)
    mask[keep[1] : keep[3], keep[0] : keep[2]] = 0
    return canvas, Image.fromarray(mask), (left, top, left + inner_w, top + inner_h)


def paste_centre(image: Image.Image, canvas: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """`image` with the canvas's unmasked centre (the source, inset by the overlap) pasted back."""
    keep = _inset(box, ZOOM_OVERLAP)
    if keep[2] <= keep[0] or keep[3] <= keep[1]:
        return image
    result = image.copy()
    result.paste(canvas.crop(keep), keep[:2])
    return result


def _inset(box: tuple[int, int, int, int], by: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return left + by, top + by, max(left + by, right - by), max(top + by, bottom - by)


def plain_prompts(spec: JobSpec) -> tuple[str, str]:
    """The prompt and negative prompt as plain text, for an encoder without weights (unCLIP)."""

    def plain(text: str) -> str:
        return "".join(part for part, _ in emphasis_segments(text)).strip()

    positives = [plain(part.text) for part in spec.prompt if part.weight > 0]
    if spec.style_suffix and spec.stylize > 0 and not spec.raw:
        positives.append(plain(spec.style_suffix))
    negatives = [spec.negative_prompt, *(plain(part.text) for part in spec.prompt if part.weight < 0)]
    return ", ".join(p for p in positives if p), ", ".join(n.strip() for n in negatives if n.strip())
