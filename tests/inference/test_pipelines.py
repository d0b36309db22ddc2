"""The model registry and `render_grid_images`, on tiny random-weight models at real resolutions."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inference import pipelines
from inference.errors import GpuOutOfMemory, JobCancelled
from inference.pipelines import (
    SCHEDULERS,
    ModelRegistry,
    encode_job_prompt,
    latent_preview_png,
    make_scheduler,
    render_grid_images,
    resolve_device,
    resolve_dtype,
    seamless_tiling,
)
from inference.tiny_models import make_tiny_models
from sojourn.spec import JobSpec, PromptPart, image_prompt_strength

FAST = {"width": 256, "height": 256, "steps": 6}  # for tests where resolution and step count don't matter


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread() -> Iterator[None]:
    # The tiny models run thousands of very small ops; with OpenMP threads competing for the cores
    # with anything else (another test process) they spin and run 5× slower, while alone one
    # thread is only ~1.5× slower than two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    paths = make_tiny_models(tmp_path_factory.mktemp("tiny-models"))
    return ModelRegistry(paths, device="cpu", dtype="auto")


def make_spec(*texts: str, **fields: object) -> JobSpec:
    """A spec from prompt parts written `text` or `text::weight`; seed 7 unless given."""
    parts = []
    for text in texts or ("a lighthouse",):
        body, _, weight = text.partition("::")
        parts.append(PromptPart(text=body, weight=float(weight or 1)))
    return JobSpec(prompt=tuple(parts), **{"seed": 7, **fields})  # type: ignore[arg-type]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


# --- devices, schedulers, loading ------------------------------------------------------------------


def test_auto_device_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="float16, bfloat16 or float32"):
        resolve_dtype("float8", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_unknown_scheduler_names_the_known_ones(registry: ModelRegistry) -> None:
    with pytest.raises(ValueError, match="dpmpp_2m_karras, dpmpp_2m_sde_karras, euler_a, euler, ddim"):
        make_scheduler("heun", registry.base.scheduler.config)


def test_every_scheduler_swaps_in_from_the_checkpoint_config(registry: ModelRegistry) -> None:
    for name, (cls, options) in SCHEDULERS.items():
        registry.use_scheduler(registry.base, name)
        assert type(registry.base.scheduler) is cls
        assert all(registry.base.scheduler.config[key] == value for key, value in options.items())
    registry.use_scheduler(registry.base, "euler")  # karras sigmas do not leak from an earlier swap
    assert not registry.base.scheduler.config.use_karras_sigmas


def test_refiner_shares_the_second_text_encoder_and_vae(registry: ModelRegistry) -> None:
    assert registry.refiner.text_encoder_2 is registry.base.text_encoder_2
    assert registry.refiner.vae is registry.base.vae
    assert registry.load_counts["refiner"] == 1 and registry.load_counts["base"] == 1


def test_attention_runs_on_sdpa(registry: ModelRegistry) -> None:
    for model in (registry.base.unet, registry.refiner.unet, registry.base.vae):
        assert {type(p).__name__ for p in model.attn_processors.values()} <= {"AttnProcessor2_0"}


# --- rendering -------------------------------------------------------------------------------------


def test_square_job_at_full_quality_reports_progress_with_previews(registry: ModelRegistry) -> None:
    progress: list[tuple[int, bytes | None]] = []
    spec = make_spec(width=1024, height=1024, steps=30)

    images = render_grid_images(registry, spec, on_progress=lambda p, png: progress.append((p, png)))

    assert [image.size for image in images] == [(1024, 1024)] * 4
    assert all(image.mode == "RGB" for image in images)
    percents = [p for p, _ in progress]
    assert len(progress) == 30  # one report per step, base and refiner together
    assert percents == sorted(percents) and percents[-1] == 100
    previews = [Image.open(io.BytesIO(png)) for _, png in progress if png is not None]
    assert len(previews) == 6  # every 5th step
    assert all(max(preview.size) <= 96 for preview in previews)


def test_wide_job_renders_at_its_bucket_without_reloading(registry: ModelRegistry) -> None:
    render_grid_images(registry, make_spec(**FAST))
    loads = dict(registry.load_counts)

    spec = JobSpec(
        prompt=(PromptPart(text="a lighthouse"),), seed=7, width=1344, height=768, aspect="16:9", steps=12
    )
    images = render_grid_images(registry, spec)

    assert [image.size for image in images] == [(1344, 768)] * 4
    assert dict(registry.load_counts) == loads


def test_image_k_is_the_single_image_of_seed_plus_k(registry: ModelRegistry) -> None:
    spec = make_spec(seed=1000, chaos=50, weird=250, **FAST)
    grid = render_grid_images(registry, spec)
    shifted = render_grid_images(registry, spec.with_seed(1001))

    assert np.array_equal(pixels(grid[1]), pixels(shifted[0]))
    assert np.array_equal(pixels(grid[3]), pixels(shifted[2]))
    assert not np.array_equal(pixels(grid[0]), pixels(grid[1]))


def test_seeds_wrap_at_the_top_of_the_range(registry: ModelRegistry) -> None:
    images = render_grid_images(registry, make_spec(seed=4_294_967_295, **FAST))
    assert len(images) == 4


def test_stop_ends_early_without_the_refiner(registry: ModelRegistry) -> None:
    progress: list[int] = []
    images = render_grid_images(
        registry,
        make_spec(stop=50, steps=10, width=256, height=256),
        on_progress=lambda p, _: progress.append(p),
    )
    assert len(images) == 4
    assert progress[-1] == 100 and len(progress) == 5


def test_stop_plans_follow_the_pipelines_cutoffs(registry: ModelRegistry) -> None:
    # The split is by noise level (the refiner is trained on t < 200), as diffusers cuts it; with
    # Karras sigmas more steps fall below that level, so the refiner takes 11 of 30 rather than 6.
    config = registry.checkpoint_scheduler_config(registry.base)
    karras = make_scheduler("dpmpp_2m_karras", config)
    full = pipelines._plan(karras, 30, 100)
    assert (full.base_end, full.refiner_end, full.base_steps, full.refiner_steps) == (0.8, None, 19, 11)
    nothing_left_to_refine = pipelines._plan(karras, 30, 81)
    assert not nothing_left_to_refine.refine and nothing_left_to_refine.base_end == 0.8

    euler = make_scheduler("euler", config)
    late = pipelines._plan(euler, 30, 90)
    assert (late.base_steps, late.refiner_end, late.refiner_steps) == (23, 0.9, 4)
    early = pipelines._plan(euler, 30, 50)
    assert not early.refine and early.base_end == 0.5


# --- image prompts (img2img from the base's own modules) ----------------------------------------------


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    pixels = np.concatenate([x + 0 * y, 0 * x + y, 255 - (x + y) / 2], axis=2)
    return Image.fromarray(pixels.astype(np.uint8))


def test_image_prompt_strength_follows_the_image_weight() -> None:
    assert [image_prompt_strength(w) for w in (0, 1, 2, 3)] == [1.0, 0.75, 0.5, 0.25]


def test_image_prompts_use_img2img_built_from_the_base_without_new_weights(registry: ModelRegistry) -> None:
    registry.preload()
    loads = dict(registry.load_counts)
    img2img = registry.base_img2img
    assert img2img.unet is registry.base.unet and img2img.vae is registry.base.vae
    assert img2img.text_encoder_2 is registry.base.text_encoder_2
    assert dict(registry.load_counts) == loads


def test_an_image_prompt_renders_at_the_jobs_bucket_and_steers_the_images(registry: ModelRegistry) -> None:
    spec = JobSpec(
        prompt=(PromptPart(text="a lighthouse"),), seed=5, width=384, height=256, aspect="3:2", steps=20
    )

    def render(init: Image.Image | None, weight: float = 1.0) -> tuple[list[Image.Image], list[int]]:
        progress: list[int] = []
        update = {"image_key": "prompts/x.png", "image_weight": weight} if init is not None else {}
        images = render_grid_images(
            registry,
            spec.model_copy(update=update),
            init_image=init,
            on_progress=lambda p, _: progress.append(p),
        )
        return images, progress

    # Another size and aspect than the job's: fitted (centre crop), not stretched.
    gradient, flipped = _gradient(300, 200), _gradient(300, 200).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    strong, strong_steps = render(gradient, 3.0)
    _, weak_steps = render(gradient, 0.0)
    other, _ = render(flipped, 3.0)
    again, _ = render(gradient, 3.0)
    plain, _ = render(None)

    assert [image.size for image in strong] == [(384, 256)] * 4
    assert strong_steps[-1] == weak_steps[-1] == 100 and strong_steps == sorted(strong_steps)
    # iw 3 leaves three quarters of the schedule to the picture: the base runs fewer steps.
    assert len(strong_steps) < len(weak_steps)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(strong, again, strict=True))
    assert not np.array_equal(pixels(strong[0]), pixels(other[0]))  # the picture steers the result
    assert not np.array_equal(pixels(strong[0]), pixels(plain[0]))


# --- prompts -----------------------------------------------------------------------------------------


def test_chaos_zero_gives_the_four_images_one_embedding(registry: ModelRegistry) -> None:
    with torch.inference_mode():
        calm, _ = encode_job_prompt(registry, make_spec(chaos=0))
        chaotic, refiner_chaotic = encode_job_prompt(registry, make_spec(chaos=100))

    assert calm.prompt_embeds.shape[0] == 4
    assert all(torch.equal(calm.prompt_embeds[0], row) for row in calm.prompt_embeds[1:])
    assert all(torch.equal(calm.pooled_prompt_embeds[0], row) for row in calm.pooled_prompt_embeds[1:])
    assert not torch.equal(chaotic.prompt_embeds[0], chaotic.prompt_embeds[1])
    assert not torch.equal(chaotic.pooled_prompt_embeds[0], chaotic.pooled_prompt_embeds[1])
    # the refiner sees the same jitter through its (second) encoder's half
    width_1 = registry.base.text_encoder.config.hidden_size
    assert torch.equal(refiner_chaotic.prompt_embeds, chaotic.prompt_embeds[..., width_1:])


def test_weird_shifts_all_four_images_alike(registry: ModelRegistry) -> None:
    with torch.inference_mode():
        plain, _ = encode_job_prompt(registry, make_spec())
        weird, _ = encode_job_prompt(registry, make_spec(weird=1500))
        weird_again, _ = encode_job_prompt(registry, make_spec(weird=1500, seed=99))

    assert all(torch.equal(weird.prompt_embeds[0], row) for row in weird.prompt_embeds[1:])
    assert not torch.equal(weird.prompt_embeds, plain.prompt_embeds)
    assert torch.equal(weird.prompt_embeds, weird_again.prompt_embeds)  # tied to the prompt, not the seed


def test_emphasis_and_multi_prompt_weights_change_the_conditioning(registry: ModelRegistry) -> None:
    with torch.inference_mode():
        plain, _ = encode_job_prompt(registry, make_spec("a red cat"))
        emphasised, _ = encode_job_prompt(registry, make_spec("a (red:1.5) cat"))
        multi, _ = encode_job_prompt(registry, make_spec("a::2", "b::-0.5"))
        empty_negative, _ = encode_job_prompt(registry, make_spec("a"))

    assert not torch.equal(plain.prompt_embeds, emphasised.prompt_embeds)
    assert torch.count_nonzero(empty_negative.negative_prompt_embeds) == 0  # SDXL base: zeros for ""
    assert torch.count_nonzero(multi.negative_prompt_embeds) > 0  # `b` pushes from the negative side


def test_weighted_prompts_render(registry: ModelRegistry) -> None:
    for texts in (["a (lighthouse:1.5) at dusk"], ["a::2", "b::-0.5"]):
        assert len(render_grid_images(registry, make_spec(*texts, negative_prompt="fog", **FAST))) == 4


def test_long_prompts_are_chunked_not_truncated(registry: ModelRegistry) -> None:
    long_text = "a lighthouse on a cliff above a stormy sea, " * 4  # > 77 byte-level tokens
    with torch.inference_mode():
        conditioning, _ = encode_job_prompt(registry, make_spec(long_text, negative_prompt="fog"))
    assert conditioning.prompt_embeds.shape[1] % 77 == 0 and conditioning.prompt_embeds.shape[1] > 77
    assert conditioning.negative_prompt_embeds.shape == conditioning.prompt_embeds.shape


# --- tiling, cancel, out of memory -------------------------------------------------------------------


def _convolutions(registry: ModelRegistry) -> list[nn.Conv2d]:
    modules = (registry.base.unet, registry.refiner.unet, registry.base.vae)
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_tile_pads_circularly_during_the_render_and_restores_after(registry: ModelRegistry) -> None:
    modes_seen: set[str] = set()

    def watch(percent: int, png: bytes | None) -> None:
        modes_seen.update(conv.padding_mode for conv in _convolutions(registry))

    render_grid_images(registry, make_spec(tile=True, **FAST), on_progress=watch)

    assert modes_seen == {"circular"}
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}


def test_tile_restores_padding_after_an_error(registry: ModelRegistry) -> None:
    def fail(percent: int, png: bytes | None) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        render_grid_images(registry, make_spec(tile=True, **FAST), on_progress=fail)
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}

    with pytest.raises(RuntimeError), seamless_tiling([registry.base.vae]):
        raise RuntimeError
    assert {conv.padding_mode for conv in _convolutions(registry)} == {"zeros"}


def cancel_after(calls: int) -> Callable[[], bool]:
    """An `is_cancelled` that says yes from its call number `calls + 1` on."""
    seen = 0

    def is_cancelled() -> bool:
        nonlocal seen
        seen += 1
        return seen > calls

    return is_cancelled


def test_cancel_stops_at_the_next_step(registry: ModelRegistry) -> None:
    progress: list[int] = []
    with pytest.raises(JobCancelled):
        render_grid_images(
            registry,
            make_spec(**FAST),
            on_progress=lambda p, _: progress.append(p),
            is_cancelled=cancel_after(3),
        )
    assert len(progress) == 3  # checked once before starting, then after each step

    assert len(render_grid_images(registry, make_spec(**FAST))) == 4  # the pipelines still work


def test_out_of_memory_becomes_an_actionable_error(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(text: str) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(registry.prompt_encoder, "encode", exhausted)
    with pytest.raises(GpuOutOfMemory, match="try a smaller --ar, lower --q or fewer images at once"):
        render_grid_images(registry, make_spec(**FAST))


# --- previews and unCLIP -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 96, 168), (4, 128, 128), (16, 64, 32)])
def test_preview_is_a_small_png_for_any_latents(shape: tuple[int, int, int]) -> None:
    preview = Image.open(io.BytesIO(latent_preview_png(torch.randn(shape))))
    assert max(preview.size) <= 96
    assert preview.size[0] / preview.size[1] == pytest.approx(shape[2] / shape[1], rel=0.05)


def test_unclip_loads_only_when_used_and_makes_a_variation(registry: ModelRegistry) -> None:
    registry.preload()  # everything a txt2img job needs
    assert registry.load_counts["unclip"] == 0

    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with torch.inference_mode():
        result = registry.unclip(
            image=source,
            prompt="a lighthouse",
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator("cpu").manual_seed(0),
        )
    assert result.images[0].size == (64, 64)
    assert registry.load_counts["unclip"] == 1
