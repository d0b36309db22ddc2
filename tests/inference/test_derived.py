"""The buttons' worker functions (upscale, variations, zoom out) on tiny random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.errors import JobCancelled
from inference.geometry import ZOOM_OVERLAP, zoom_out_canvas
from inference.models import ModelRegistry
from inference.render import render_job_images
from sojourn.actions import Render
from sojourn.spec import JobSpec, PromptPart
from tests.inference.helpers import ACTION_FIELDS, FAST, cancel_after, derived_spec, gradient, pixels


def render(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, **hooks: object
) -> tuple[list[Image.Image], list[int]]:
    progress: list[int] = []
    images = render_job_images(
        registry, spec, source_image=source, on_progress=lambda p, _: progress.append(p), **hooks
    )  # type: ignore[arg-type]
    return images, progress


def test_every_action_renders_from_loaded_models_without_reloading(registry: ModelRegistry) -> None:
    source = gradient(256, 256)
    for action in ACTION_FIELDS:  # the first round loads unCLIP (the only model not shared with SDXL)
        render(registry, derived_spec(action, source), source)
    loads = dict(registry.load_counts)
    assert loads == {"base": 1, "vae": 1, "refiner": 1, "unclip": 1}

    for action in ACTION_FIELDS:
        render(registry, derived_spec(action, source), source)
    render_job_images(registry, JobSpec(prompt=(PromptPart(text="a"),), seed=1, **FAST))  # type: ignore[arg-type]
    assert dict(registry.load_counts) == loads


# --- upscale ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1024, 1024), (1344, 768), (2048, 2048)])  # the last: to 4096 px
def test_upscale_doubles_the_source_into_one_image(registry: ModelRegistry, size: tuple[int, int]) -> None:
    source = gradient(*size)
    tiling_seen: set[bool] = set()

    def watch(percent: int, png: bytes | None) -> None:
        tiling_seen.add(registry.base.vae.use_tiling)

    spec = derived_spec(Render.UPSCALE, source, steps=4)
    images = render_job_images(registry, spec, source_image=source, on_progress=watch)

    assert [image.size for image in images] == [(size[0] * 2, size[1] * 2)]
    assert tiling_seen == {True}  # the one whole-image pass ran with a tiled VAE...
    assert not registry.base.vae.use_tiling  # ...which the txt2img path (same VAE) does not get
    assert registry.refiner.vae is registry.base.vae


def test_upscale_starts_from_the_source_and_reports_progress(registry: ModelRegistry) -> None:
    # Random weights do not reproduce a picture through the VAE, so check that the source steers it.
    source = gradient(256, 192)
    spec = derived_spec(Render.UPSCALE, source, steps=10)
    (image,), progress = render(registry, spec, source)
    (flipped,), _ = render(registry, spec, source.transpose(Image.Transpose.FLIP_LEFT_RIGHT))

    assert image.size == (512, 384)
    assert not np.array_equal(pixels(image), pixels(flipped))
    assert progress == [33, 66, 100]  # strength 0.3 of 10 steps: the last 3


def test_vae_tiling_is_switched_off_after_a_cancelled_upscale(registry: ModelRegistry) -> None:
    source = gradient(256, 256)
    spec = derived_spec(Render.UPSCALE, source, steps=20)
    with pytest.raises(JobCancelled):
        render(registry, spec, source, is_cancelled=cancel_after(2))
    assert not registry.base.vae.use_tiling


# --- the four-image actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [Render.VARY_STRONG, Render.VARY_SUBTLE, Render.ZOOM_OUT])
def test_four_images_at_the_jobs_size_with_progress_to_100(registry: ModelRegistry, action: Render) -> None:
    source = gradient(384, 256)
    images, progress = render(registry, derived_spec(action, source), source)

    assert [image.size for image in images] == [(384, 256)] * 4
    assert all(image.mode == "RGB" for image in images)
    assert progress[-1] == 100 and progress == sorted(progress) and len(progress) > 1
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))  # four seeds, four images


@pytest.mark.parametrize("action", list(Render))
def test_the_same_spec_gives_the_same_pixels(registry: ModelRegistry, action: Render) -> None:
    source = gradient(256, 256)
    spec = derived_spec(action, source)
    first, _ = render(registry, spec, source)
    again, _ = render(registry, spec, source)
    other, _ = render(registry, spec.with_seed(99), source)

    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))


def test_a_strong_variation_k_is_the_first_of_a_run_with_seed_plus_k(registry: ModelRegistry) -> None:
    # Each image gets its own noised image embedding, drawn from its own generator.
    source = gradient(256, 256)
    spec = derived_spec(Render.VARY_STRONG, source)
    grid, _ = render(registry, spec, source)
    shifted, _ = render(registry, spec.with_seed(spec.seed + 2), source)  # type: ignore[operator]
    assert np.array_equal(pixels(grid[2]), pixels(shifted[0]))


def test_strong_variations_follow_the_noise_level(registry: ModelRegistry) -> None:
    source = gradient(256, 256)
    low, _ = render(registry, derived_spec(Render.VARY_STRONG, source, noise_level=0), source)
    high, _ = render(registry, derived_spec(Render.VARY_STRONG, source, noise_level=900), source)
    assert not np.array_equal(pixels(low[0]), pixels(high[0]))


def test_a_subtle_variation_below_the_refiners_share_runs_the_refiner_alone(registry: ModelRegistry) -> None:
    source = gradient(256, 256)
    images, progress = render(registry, derived_spec(Render.VARY_SUBTLE, source, strength=0.1), source)
    assert len(images) == 4 and progress[-1] == 100


def test_zoom_out_keeps_the_shrunk_source_in_the_centre(registry: ModelRegistry) -> None:
    source = gradient(256, 256)
    spec = derived_spec(Render.ZOOM_OUT, source, width=256, height=256, zoom=2.0)
    images, _ = render(registry, spec, source)

    shrunk = pixels(source.resize((128, 128), Image.Resampling.LANCZOS))
    inner = slice(64 + ZOOM_OVERLAP, 192 - ZOOM_OVERLAP)
    kept = slice(ZOOM_OVERLAP, 128 - ZOOM_OVERLAP)
    canvas, _, _ = zoom_out_canvas(source, 256, 256, 2.0)
    for image in images:
        assert np.array_equal(pixels(image)[inner, inner], shrunk[kept, kept])
        # The border was painted, not left as the edge-extended canvas.
        assert np.abs(pixels(image)[:48] - pixels(canvas)[:48]).mean() > 5
