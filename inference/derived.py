"""The worker functions of the buttons under a result: upscale, strong and subtle variations, zoom out.

Each starts from the stored source image (`spec.source`) and renders `spec.width`×`spec.height`,
the output size. All but one run on modules the worker already holds: the refiner, and the base
through its img2img and inpainting views. Vary (Strong) needs Stable unCLIP, an SD 2.1 model with
its own encoders, UNet and VAE; the refiner then brings its images to the job's resolution.
Each is called under inference mode (see `inference.render`) and returns its images and reporter.
"""

from __future__ import annotations

from PIL import Image

from inference.conditioning import JobConditioning, plain_prompts
from inference.geometry import fit_image, paste_centre, unclip_size, zoom_out_canvas
from inference.job import Rendered, RenderJob
from inference.planning import REFINER_START, img2img_steps, refine_steps
from inference.progress import StepReporter
from inference.schedulers import Scheduler
from inference.text_to_image import ensemble
from inference.tiling import vae_tiling


def upscale(job: RenderJob, source: Image.Image) -> Rendered:
    """2×: Lanczos to the output size, then the refiner's img2img adds the detail (same seed)."""
    enlarged = fit_image(source, job.spec.width, job.spec.height)
    # One pass over the whole image with a tiled VAE, not tiled diffusion: at ~0.3 strength the
    # UNet's activations at 2048 px (4096 px) fit, the VAE's full-resolution ones do not, and one
    # pass keeps the whole picture in view, so there are no seams to hide between denoised tiles.
    with vae_tiling(job.registry.refiner.vae):
        return refiner_pass(job, [enlarged])


def vary_strong(job: RenderJob, source: Image.Image) -> Rendered:
    """Stable unCLIP on the source's CLIP image embedding and the prompt, then the refiner."""
    registry, spec = job.registry, job.spec
    unclip, refiner = registry.unclip, registry.refiner
    registry.use_scheduler(unclip, spec.scheduler)
    registry.use_scheduler(refiner, spec.scheduler)
    _, conditioning = job.conditioning()
    # diffusers annotates unCLIP's `scheduler` with the enum of scheduler names, not a scheduler.
    unclip_scheduler: Scheduler = unclip.scheduler  # type: ignore[assignment]
    unclip_scheduler.set_timesteps(spec.steps)
    unclip_steps = len(unclip_scheduler.timesteps)
    refiner_steps = img2img_steps(refiner.scheduler, refine_steps(spec), spec.strength, None)
    reporter = job.reporter(unclip_steps + refiner_steps)

    # One embedding row per image, so `noise_level` noises each with its own generator: image k
    # is then the same as a run with its seed alone (a PIL image would share one noised row).
    pixels = unclip.feature_extractor(images=source, return_tensors="pt").pixel_values
    embedding = unclip.image_encoder(pixels.to(registry.device, unclip.image_encoder.dtype)).image_embeds
    width, height = unclip_size(spec.width, spec.height)
    positive, negative = plain_prompts(spec)
    count = len(spec.image_seeds())
    result = unclip(
        image_embeds=embedding.expand(count, -1),
        prompt=[positive] * count,
        negative_prompt=[negative] * count,
        width=width,
        height=height,
        num_inference_steps=spec.steps,
        guidance_scale=spec.guidance,
        noise_level=spec.noise_level,
        generator=job.generators(),
        callback=reporter.legacy_callback,  # raises JobCancelled: unCLIP has no `interrupt`
        callback_steps=1,
    )
    variations = [fit_image(image, spec.width, spec.height) for image in result.images]
    return refine(job, variations, conditioning, reporter), reporter


def vary_subtle(job: RenderJob, source: Image.Image) -> Rendered:
    """img2img of the source at `spec.strength`: base then refiner, or the refiner alone when the
    touch is too light to reach the base's share of the schedule."""
    if job.spec.strength > 1 - REFINER_START:
        return ensemble(job, init_image=source, strength=job.spec.strength)
    fitted = fit_image(source, job.spec.width, job.spec.height)
    return refiner_pass(job, [fitted] * len(job.spec.image_seeds()))


def zoom_out(job: RenderJob, source: Image.Image) -> Rendered:
    """The source shrunk on a larger canvas; the base (as an inpainting pipeline) paints the border."""
    registry, spec = job.registry, job.spec
    inpaint = registry.inpaint
    registry.use_scheduler(inpaint, spec.scheduler)
    conditioning, _ = job.conditioning()
    canvas, mask, box = zoom_out_canvas(source, spec.width, spec.height, spec.zoom)
    reporter = job.reporter(img2img_steps(inpaint.scheduler, spec.steps, 1.0, None))
    images = job.denoise(
        inpaint,
        conditioning,
        reporter,
        job.generators(),
        image=canvas,
        mask_image=mask,
        width=spec.width,
        height=spec.height,
        strength=1.0,
        num_inference_steps=spec.steps,
    )
    # The VAE round trip blurs the kept centre a little; the source's own pixels go back on top.
    return [paste_centre(image, canvas, box) for image in images], reporter


def refiner_pass(job: RenderJob, images: list[Image.Image]) -> Rendered:
    """The refiner's img2img at `spec.strength` over `images`, with its own progress reporter."""
    registry, spec = job.registry, job.spec
    registry.use_scheduler(registry.refiner, spec.scheduler)
    _, conditioning = job.conditioning()
    steps = img2img_steps(registry.refiner.scheduler, refine_steps(spec), spec.strength, None)
    reporter = job.reporter(steps)
    return refine(job, images, conditioning, reporter), reporter


def refine(
    job: RenderJob, images: list[Image.Image], conditioning: JobConditioning, reporter: StepReporter
) -> list[Image.Image]:
    """The refiner's img2img at `spec.strength` over `images` (one per seed), at the output size."""
    refined = job.denoise(
        job.registry.refiner,
        conditioning,
        reporter,
        job.generators(),
        image=images,
        strength=job.spec.strength,
        num_inference_steps=refine_steps(job.spec),
    )
    return list(refined)
