"""Derived jobs (upscale, variations, zoom out) on the real pipelines with tiny random-weight models."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from inference.derived import (
    ZOOM_OVERLAP,
    check_job_inputs,
    plain_prompts,
    refine_steps,
    render_job_images,
    unclip_size,
    zoom_out_canvas,
)
from inference.errors import GpuOutOfMemory, JobCancelled
from inference.pipelines import ModelRegistry
from sojourn.spec import JobSpec, PromptPart, SourceImage
from tests.inference.test_pipelines import cancel_after

GRID = {"width": 256, "height": 256, "steps": 6}  # small where the size is not what is tested
ACTIONS: dict[str, dict[str, object]] = {
    "upscale": {"images": 1, "strength": 0.3},
    "vary_strong": {"strength": 0.3, "noise_level": 100},
    "vary_subtle": {"strength": 0.35},
    "zoom_out": {"zoom": 2.0, "strength": 1.0},
}


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread() -> Iterator[None]:
    threads = torch.get_num_threads()  # see test_pipelines.py: tiny models run faster on one thread
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registry(tiny_models) -> ModelRegistry:  # type: ignore[no-untyped-def]
    return ModelRegistry(tiny_models, device="cpu", dtype="auto")


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, 0 * x + y, 255 - (x + y) / 2], axis=2).astype(np.uint8))


def derived_spec(action: str, source: Image.Image, **fields: object) -> JobSpec:
    """A derived job as the job service makes it: the output size is 2× the source for an upscale."""
    scale = 2 if action == "upscale" else 1
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
        **ACTIONS[action],
        **fields,
    }
    return JobSpec(**spec)  # type: ignore[arg-type]


def render(
    registry: ModelRegistry, spec: JobSpec, source: Image.Image, **hooks: object
) -> tuple[list[Image.Image], list[int]]:
    progress: list[int] = []
    images = render_job_images(
        registry, spec, source_image=source, on_progress=lambda p, _: progress.append(p), **hooks
    )  # type: ignore[arg-type]
    return images, progress


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


# --- sharing and loading ---------------------------------------------------------------------------


def test_the_inpainting_pipeline_is_the_base_without_new_weights(registry: ModelRegistry) -> None:
    base = registry.base
    loads = dict(registry.load_counts)
    inpaint = registry.inpaint
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        assert getattr(inpaint, name) is getattr(base, name), name
    assert registry.inpaint is inpaint
    assert dict(registry.load_counts) == loads


def test_every_action_renders_from_loaded_models_without_reloading(registry: ModelRegistry) -> None:
    source = _gradient(256, 256)
    for action in ACTIONS:  # the first round loads unCLIP (the only model not shared with SDXL)
        render(registry, derived_spec(action, source), source)
    loads = dict(registry.load_counts)
    assert loads == {"base": 1, "vae": 1, "refiner": 1, "unclip": 1}

    for action in ACTIONS:
        render(registry, derived_spec(action, source), source)
    render_job_images(registry, JobSpec(prompt=(PromptPart(text="a"),), seed=1, **GRID))  # type: ignore[arg-type]
    assert dict(registry.load_counts) == loads


# --- upscale ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1024, 1024), (1344, 768), (2048, 2048)])  # the last: to 4096 px
def test_upscale_doubles_the_source_into_one_image(registry: ModelRegistry, size: tuple[int, int]) -> None:
    source = _gradient(*size)
    tiling_seen: set[bool] = set()

    def watch(percent: int, png: bytes | None) -> None:
        tiling_seen.add(registry.base.vae.use_tiling)

    spec = derived_spec("upscale", source, steps=4)
    images = render_job_images(registry, spec, source_image=source, on_progress=watch)

    assert [image.size for image in images] == [(size[0] * 2, size[1] * 2)]
    assert tiling_seen == {True}  # the one whole-image pass ran with a tiled VAE...
    assert not registry.base.vae.use_tiling  # ...which the txt2img path (same VAE) does not get
    assert registry.refiner.vae is registry.base.vae


def test_upscale_starts_from_the_source_and_reports_progress(registry: ModelRegistry) -> None:
    # Random weights do not reproduce a picture through the VAE, so check that the source steers it.
    source = _gradient(256, 192)
    spec = derived_spec("upscale", source, steps=10)
    (image,), progress = render(registry, spec, source)
    (flipped,), _ = render(registry, spec, source.transpose(Image.Transpose.FLIP_LEFT_RIGHT))

    assert image.size == (512, 384)
    assert not np.array_equal(pixels(image), pixels(flipped))
    assert progress == [33, 66, 100]  # strength 0.3 of 10 steps: the last 3


def test_vae_tiling_is_switched_off_after_a_cancelled_upscale(registry: ModelRegistry) -> None:
    source = _gradient(256, 256)
    with pytest.raises(JobCancelled):
        render(registry, derived_spec("upscale", source, steps=20), source, is_cancelled=cancel_after(2))
    assert not registry.base.vae.use_tiling


# --- the four-image actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["vary_strong", "vary_subtle", "zoom_out"])
def test_four_images_at_the_jobs_size_with_progress_to_100(registry: ModelRegistry, action: str) -> None:
    source = _gradient(384, 256)
    images, progress = render(registry, derived_spec(action, source), source)

    assert [image.size for image in images] == [(384, 256)] * 4
    assert all(image.mode == "RGB" for image in images)
    assert progress[-1] == 100 and progress == sorted(progress) and len(progress) > 1
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))  # four seeds, four images


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_same_spec_gives_the_same_pixels(registry: ModelRegistry, action: str) -> None:
    source = _gradient(256, 256)
    spec = derived_spec(action, source)
    first, _ = render(registry, spec, source)
    again, _ = render(registry, spec, source)
    other, _ = render(registry, spec.with_seed(99), source)

    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(pixels(first[0]), pixels(other[0]))


def test_a_strong_variation_k_is_the_first_of_a_run_with_seed_plus_k(registry: ModelRegistry) -> None:
    # Each image gets its own noised image embedding, drawn from its own generator.
    source = _gradient(256, 256)
    spec = derived_spec("vary_strong", source)
    grid, _ = render(registry, spec, source)
    shifted, _ = render(registry, spec.with_seed(spec.seed + 2), source)  # type: ignore[operator]
    assert np.array_equal(pixels(grid[2]), pixels(shifted[0]))


def test_strong_variations_follow_the_noise_level(registry: ModelRegistry) -> None:
    source = _gradient(256, 256)
    low, _ = render(registry, derived_spec("vary_strong", source, noise_level=0), source)
    high, _ = render(registry, derived_spec("vary_strong", source, noise_level=900), source)
    assert not np.array_equal(pixels(low[0]), pixels(high[0]))


def test_a_subtle_variation_below_the_refiners_share_runs_the_refiner_alone(registry: ModelRegistry) -> None:
    source = _gradient(256, 256)
    images, progress = render(registry, derived_spec("vary_subtle", source, strength=0.1), source)
    assert len(images) == 4 and progress[-1] == 100


def test_zoom_out_keeps_the_shrunk_source_in_the_centre(registry: ModelRegistry) -> None:
    source = _gradient(256, 256)
    images, _ = render(registry, derived_spec("zoom_out", source, width=256, height=256, zoom=2.0), source)

    shrunk = pixels(source.resize((128, 128), Image.Resampling.LANCZOS))
    inner = slice(64 + ZOOM_OVERLAP, 192 - ZOOM_OVERLAP)
    kept = slice(ZOOM_OVERLAP, 128 - ZOOM_OVERLAP)
    canvas, _, _ = zoom_out_canvas(source, 256, 256, 2.0)
    for image in images:
        assert np.array_equal(pixels(image)[inner, inner], shrunk[kept, kept])
        # The border was painted, not left as the edge-extended canvas.
        assert np.abs(pixels(image)[:48] - pixels(canvas)[:48]).mean() > 5


@pytest.mark.parametrize(("zoom", "size"), [(1.5, (1344, 768)), (2.0, (1024, 1024)), (2.0, (768, 1344))])
def test_zoom_out_canvas_and_mask_geometry(zoom: float, size: tuple[int, int]) -> None:
    width, height = size
    source = _gradient(width, height)
    canvas, mask, (left, top, right, bottom) = zoom_out_canvas(source, width, height, zoom)

    assert canvas.size == mask.size == (width, height) and mask.mode == "L"
    assert (right - left, bottom - top) == (round(width / zoom), round(height / zoom))
    assert (left + right) / 2 == pytest.approx(width / 2, abs=1)
    assert (top + bottom) / 2 == pytest.approx(height / 2, abs=1)
    m = np.asarray(mask)
    inset = ZOOM_OVERLAP
    assert (m[top + inset : bottom - inset, left + inset : right - inset] == 0).all()
    assert (m[:top] == 255).all() and (m[:, :left] == 255).all() and (m[bottom:] == 255).all()
    # The mask reaches a few pixels into the pasted source, so the seam is painted over.
    assert (m[top : top + ZOOM_OVERLAP, left:right] == 255).all()
    # The border is the source's edge, extended: no black frame for the painter to keep.
    assert np.array_equal(np.asarray(canvas)[0, left:right], np.asarray(canvas)[top, left:right])


# --- cancel, errors, inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(ACTIONS))
def test_cancel_stops_at_the_next_step(registry: ModelRegistry, action: str) -> None:
    source = _gradient(256, 256)
    spec = derived_spec(action, source, steps=12)
    with pytest.raises(JobCancelled):
        render(registry, spec, source, is_cancelled=cancel_after(0))  # before anything runs
    progress: list[int] = []
    with pytest.raises(JobCancelled):
        render_job_images(
            registry,
            spec,
            source_image=source,
            on_progress=lambda p, _: progress.append(p),
            is_cancelled=cancel_after(2),
        )
    assert len(progress) == 2  # checked once before starting, then after each step
    assert len(render(registry, spec, source)[0]) == spec.images  # the pipelines still work


@pytest.mark.parametrize("action", list(ACTIONS))
def test_out_of_memory_becomes_an_actionable_error(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(registry.prompt_encoder, "encode", exhausted)
    source = _gradient(256, 256)
    with pytest.raises(GpuOutOfMemory, match="ran out of memory"):
        render(registry, derived_spec(action, source), source)


def test_inputs_are_checked_before_any_model_work() -> None:
    source = _gradient(256, 256)
    upscale = derived_spec("upscale", source)
    with pytest.raises(ValueError, match=r"needs spec\.source"):
        check_job_inputs(upscale.model_copy(update={"source": None}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="needs the source image"):
        check_job_inputs(upscale, init_image=None, source_image=None)
    with pytest.raises(ValueError, match="one image, not 4"):
        check_job_inputs(upscale.model_copy(update={"images": 4}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="strength above 0"):
        check_job_inputs(upscale.model_copy(update={"strength": 0.0}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="zoom above 1"):
        zoom = derived_spec("zoom_out", source, zoom=1.0)
        check_job_inputs(zoom, init_image=None, source_image=source)
    with pytest.raises(ValueError, match="multiples of 8"):
        check_job_inputs(upscale.model_copy(update={"width": 515}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="source image was given for a text-to-image job"):
        check_job_inputs(upscale.model_copy(update={"action": None}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="no seed yet"):
        check_job_inputs(upscale.model_copy(update={"seed": None}), init_image=None, source_image=source)


def test_img2img_passes_always_run_at_least_one_step() -> None:
    source = _gradient(256, 256)
    assert refine_steps(derived_spec("upscale", source, steps=30)) == 30
    assert refine_steps(derived_spec("upscale", source, steps=2, strength=0.3)) == 4
    assert refine_steps(derived_spec("upscale", source, steps=2, strength=0.1)) == 10


def test_unclip_renders_near_its_training_size_in_the_jobs_aspect() -> None:
    assert unclip_size(1024, 1024) == (768, 768)
    assert unclip_size(1344, 768) == (960, 576)
    assert unclip_size(256, 384) == (256, 384)  # never enlarged


def test_unclip_gets_the_prompt_as_plain_text() -> None:
    spec = JobSpec(
        prompt=(PromptPart(text="a (red:1.4) cat"), PromptPart(text="dogs", weight=-0.5)),
        negative_prompt="blur",
        style_suffix="cinematic",
        seed=1,
    )
    assert plain_prompts(spec) == ("a red cat, cinematic", "blur, dogs")
    assert plain_prompts(spec.model_copy(update={"raw": True}))[0] == "a red cat"


def test_the_dispatch_covers_every_action() -> None:
    from typing import get_args

    from sojourn.spec import DerivedAction

    assert set(get_args(DerivedAction)) == set(ACTIONS)
