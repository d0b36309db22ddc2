"""The worker's one entry point: a job's images, from its spec, whatever its kind.

A text-to-image job (`spec.action is None`, /imagine and 🔄) renders through `text_to_image`;
a button's job through the worker function its action names (`RENDERERS`, keyed by
`sojourn.actions.Render`; the meta-test in tests/inference checks it against the action table).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from inference import derived
from inference.job import Renderer, RenderJob
from inference.memory import out_of_memory_as_error
from inference.models import ModelRegistry
from inference.progress import PREVIEW_EVERY, ProgressCallback, ProgressHooks
from inference.text_to_image import text_to_image
from sojourn.actions import Render
from sojourn.spec import JobSpec

RENDERERS: dict[Render, Renderer] = {
    Render.UPSCALE: derived.upscale,
    Render.VARY_STRONG: derived.vary_strong,
    Render.VARY_SUBTLE: derived.vary_subtle,
    Render.ZOOM_OUT: derived.zoom_out,
}


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
    """The job's images: a text-to-image grid (from `init_image`, its image prompt, if any), or
    what its button asks of `source_image`."""
    check_job_inputs(spec, init_image=init_image, source_image=source_image)
    hooks = ProgressHooks(on_progress, is_cancelled, preview_every)
    hooks.raise_if_cancelled()
    job = RenderJob(registry, spec, hooks)
    with torch.inference_mode(), out_of_memory_as_error(registry.device):
        if spec.action is None:
            images, reporter = text_to_image(job, init_image)
        else:
            assert source_image is not None  # checked above
            images, reporter = RENDERERS[spec.action](job, source_image.convert("RGB"))
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
    if spec.action == Render.UPSCALE and spec.images != 1:
        raise ValueError(f"an upscale renders one image, not {spec.images}")
    if spec.action in (Render.UPSCALE, Render.VARY_STRONG, Render.VARY_SUBTLE) and spec.strength <= 0:
        raise ValueError(f"a {spec.action} job needs a strength above 0 (the img2img pass)")
    if spec.action == Render.ZOOM_OUT and spec.zoom <= 1:
        raise ValueError(f"zoom out needs a zoom above 1, not {spec.zoom}")
