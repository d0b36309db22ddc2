"""Text-to-image grids through `render_job_images`, on tiny random-weight models at real resolutions."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inference.errors import GpuOutOfMemory, JobCancelled
from inference.models import ModelRegistry
from inference.render import render_job_images
from inference.tiling import seamless_tiling
from sojourn.spec import JobSpec, PromptPart, image_prompt_strength
from tests.inference.helpers import FAST, cancel_after, gradient, make_spec, pixels


def test_square_job_at_full_quality_reports_progress_with_previews(registry: ModelRegistry) -> None:
    progress: list[tuple[int, bytes | None]] = []
    spec = make_spec(width=1024, height=1024, steps=30)

    images = render_job_images(registry, spec, on_progress=lambda p, png: progress.append((p, png)))

    assert [image.size for image in images] == [(1024, 1024)] * 4
    assert all(image.mode == "RGB" for image in images)
    percents = [p for p, _ in progress]
    assert len(progress) == 30  # one report per step, base and refiner together
    assert percents == sorted(percents) and percents[-1] == 100
    previews = [Image.open(io.BytesIO(png)) for _, png in progress if png is not None]
    assert len(previews) == 6  # every 5th step
    assert all(max(preview.size) <= 96 for preview in previews)


def test_wide_job_renders_at_its_bucket_without_reloading(registry: ModelRegistry) -> None:
    render_job_images(registry, make_spec(**FAST))
    loads = dict(registry.load_counts)

    spec = JobSpec(
        prompt=(PromptPart(text="a lighthouse"),), seed=7, width=1344, height=768, aspect="16:9", steps=12
    )
    images = render_job_images(registry, spec)

    assert [image.size for image in images] == [(1344, 768)] * 4
    assert dict(registry.load_counts) == loads


def test_image_k_is_the_single_image_of_seed_plus_k(registry: ModelRegistry) -> None:
    spec = make_spec(seed=1000, chaos=50, weird=250, **FAST)
    grid = render_job_images(registry, spec)
    shifted = render_job_images(registry, spec.with_seed(1001))

    assert np.array_equal(pixels(grid[1]), pixels(shifted[0]))
    assert np.array_equal(pixels(grid[3]), pixels(shifted[2]))
    assert not np.array_equal(pixels(grid[0]), pixels(grid[1]))


def test_seeds_wrap_at_the_top_of_the_range(registry: ModelRegistry) -> None:
    images = render_job_images(registry, make_spec(seed=4_294_967_295, **FAST))
    assert len(images) == 4


def test_stop_ends_early_without_the_refiner(registry: ModelRegistry) -> None:
    progress: list[int] = []
    images = render_job_images(
        registry,
        make_spec(stop=50, steps=10, width=256, height=256),
        on_progress=lambda p, _: progress.append(p),
    )
    assert len(images) == 4
    assert progress[-1] == 100 and len(progress) == 5


def test_weighted_prompts_render(registry: ModelRegistry) -> None:
    for texts in (["a (lighthouse:1.5) at dusk"], ["a::2", "b::-0.5"]):
        assert len(render_job_images(registry, make_spec(*texts, negative_prompt="fog", **FAST))) == 4


# --- image prompts (img2img from the base's own modules) ----------------------------------------------


def test_image_prompt_strength_follows_the_image_weight() -> None:
    assert [image_prompt_strength(w) for w in (0, 1, 2, 3)] == [1.0, 0.75, 0.5, 0.25]


def test_an_image_prompt_renders_at_the_jobs_bucket_and_steers_the_images(registry: ModelRegistry) -> None:
    spec = JobSpec(
        prompt=(PromptPart(text="a lighthouse"),), seed=5, width=384, height=256, aspect="3:2", steps=20
    )

    def render(init: Image.Image | None, weight: float = 1.0) -> tuple[list[Image.Image], list[int]]:
        progress: list[int] = []
        update = {"image_key": "prompts/x.png", "image_weight": weight} if init is not None else {}
        images = render_job_images(
            registry,
            spec.model_copy(update=update),
            init_image=init,
            on_progress=lambda p, _: progress.append(p),
        )
        return images, progress

    # Another size and aspect than the job's: fitted (centre crop), not stretched.
    source, flipped = gradient(300, 200), gradient(300, 200).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    strong, strong_steps = render(source, 3.0)
    _, weak_steps = render(source, 0.0)
    other, _ = render(flipped, 3.0)
    again, _ = render(source, 3.0)
    plain, _ = render(None)

    assert [image.size for image in strong] == [(384, 256)] * 4
    assert strong_steps[-1] == weak_steps[-1] == 100 and strong_steps == sorted(strong_steps)
    # iw 3 leaves three quarters of the schedule to the picture: the base runs fewer steps.
    assert len(strong_steps) < len(weak_steps)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(strong, again, strict=True))
    assert not np.array_equal(pixels(strong[0]), pixels(other[0]))  # the picture steers the result
    assert not np.array_equal(pixels(strong[0]), pixels(plain[0]))


# --- tiling, cancel, out of memory -------------------------------------------------------------------


def _convolutions(registry: ModelRegistry) -> list[nn.Conv2d]:
    modules = (registry.base.unet, registry.refiner.unet, registry.base.vae)
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_tile_pads_circularly_during_the_render_and_restores_after(registry: ModelRegistry) -> None:
    modes_seen: set[str] = set()

    def watch(percent: int, png: bytes | None) -> None:
        modes_seen.update(conv.padding_mode for conv in _convolutions(registry))

    render_job_images(registry, make_spec(tile=True, **FAST), on_progress=watch)

    assert modes_seen == {"circular"}
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}


def test_tile_restores_padding_after_an_error(registry: ModelRegistry) -> None:
    def fail(percent: int, png: bytes | None) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        render_job_images(registry, make_spec(tile=True, **FAST), on_progress=fail)
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}

    with pytest.raises(RuntimeError), seamless_tiling([registry.base.vae]):
        raise RuntimeError
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}


def test_cancel_stops_at_the_next_step(registry: ModelRegistry) -> None:
    progress: list[int] = []
    with pytest.raises(JobCancelled):
        render_job_images(
            registry,
            make_spec(**FAST),
            on_progress=lambda p, _: progress.append(p),
            is_cancelled=cancel_after(3),
        )
    assert len(progress) == 3  # checked once before starting, then after each step

    assert len(render_job_images(registry, make_spec(**FAST))) == 4  # the pipelines still work


def test_out_of_memory_becomes_an_actionable_error(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(text: str) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(registry.prompt_encoder, "encode", exhausted)
    with pytest.raises(GpuOutOfMemory, match="try a smaller --ar, lower --q or fewer images at once"):
        render_job_images(registry, make_spec(**FAST))
