"""`PerformanceSettings`: each option loads the tiny models, renders through the worker's path, and
does what it says (attention processors, fused projections, memory layout, compiled modules).

Compiling runs once, with every other option on: a cold inductor compile of the three modules takes
minutes on two CPU cores (seconds once its cache in /tmp/torchinductor_$USER is warm).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention
from PIL import Image
from pydantic import ValidationError
from torch._dynamo.utils import counters

from inference.models import ModelRegistry, warm_up_sizes
from inference.render import render_job_images
from sojourn.prompt.aspect import ALL_BUCKETS
from sojourn.settings import ModelPaths, PerformanceSettings, Settings
from tests.inference.helpers import FAST, make_spec, pixels

OFF = {"sdpa": False, "fuse_qkv": False, "channels_last": False}
CASES = {
    "none": OFF,
    "sdpa": {**OFF, "sdpa": True},
    "fuse_qkv": {**OFF, "sdpa": True, "fuse_qkv": True},  # fused attention runs on SDPA
    "channels_last": {**OFF, "channels_last": True},
    "all": {"compile": True, "warm_buckets": [f"{FAST['width']}x{FAST['height']}"]},  # the defaults + compile
}
PROCESSORS = {
    "none": "AttnProcessor",
    "sdpa": "AttnProcessor2_0",
    "fuse_qkv": "FusedAttnProcessor2_0",
    "channels_last": "AttnProcessor",
    "all": "FusedAttnProcessor2_0",
}


@pytest.fixture(scope="module")
def reference(registry: ModelRegistry) -> list[Image.Image]:
    """The job rendered with the default settings."""
    return render_job_images(registry, make_spec(**FAST))


@pytest.fixture(scope="module", params=list(CASES))
def tuned(request: pytest.FixtureRequest, tiny_models: ModelPaths) -> Iterator[tuple[str, ModelRegistry]]:
    registry = ModelRegistry(
        tiny_models, device="cpu", dtype="auto", performance=PerformanceSettings(**CASES[request.param])
    )
    registry.preload()
    yield request.param, registry
    torch._dynamo.reset()  # drop compiled graphs with the registry


def test_each_setting_renders_the_same_images(
    tuned: tuple[str, ModelRegistry], reference: list[Image.Image]
) -> None:
    _, registry = tuned
    images = render_job_images(registry, make_spec(**FAST))
    assert [image.size for image in images] == [(FAST["width"], FAST["height"])] * 4
    for image, expected in zip(images, reference, strict=True):
        # The same arithmetic in another order: a level of rounding here and there, no more.
        assert np.abs(pixels(image) - pixels(expected)).max() <= 3


def test_attention_runs_on_the_chosen_processor(tuned: tuple[str, ModelRegistry]) -> None:
    case, registry = tuned
    for model in (registry.base.unet, registry.refiner.unet, registry.unclip.unet):
        assert {type(p).__name__ for p in model.attn_processors.values()} == {PROCESSORS[case]}


def test_fused_projections_share_their_weights(tuned: tuple[str, ModelRegistry]) -> None:
    case, registry = tuned
    layers = [module for module in registry.base.unet.modules() if isinstance(module, Attention)]
    assert layers
    for layer in layers:
        if PROCESSORS[case] != "FusedAttnProcessor2_0":
            assert not layer.fused_projections
            continue
        fused = layer.to_kv if layer.is_cross_attention else layer.to_qkv
        parts = [layer.to_k, layer.to_v] if layer.is_cross_attention else [layer.to_q, layer.to_k, layer.to_v]
        # Views into the fused weight: fusing added no memory.
        storage = fused.weight.untyped_storage().data_ptr()
        assert all(part.weight.untyped_storage().data_ptr() == storage for part in parts)
        assert torch.equal(torch.cat([part.weight for part in parts]), fused.weight)


def test_weights_are_channels_last_when_asked(tuned: tuple[str, ModelRegistry]) -> None:
    case, registry = tuned
    wanted = PerformanceSettings(**CASES[case]).channels_last
    for model in (registry.base.unet, registry.refiner.unet, registry.base.vae.decoder):
        weight = model.conv_in.weight  # 3×3 kernels: the two layouts differ
        assert weight.is_contiguous(memory_format=torch.channels_last) is wanted
        assert weight.is_contiguous() is not wanted


def test_compiling_covers_both_unets_and_the_decoder_and_warms_the_bucket(
    tuned: tuple[str, ModelRegistry],
) -> None:
    case, registry = tuned
    compiled = [
        registry.base.unet,
        registry.refiner.unet,
        registry.base.vae.decoder,
        registry.base_img2img.unet,  # the derived pipelines share the compiled modules
        registry.inpaint.vae.decoder,
    ]
    if case != "all":
        assert all(module._compiled_call_impl is None for module in compiled)
        assert registry.warm_up_seconds == {}
        return
    assert all(module._compiled_call_impl is not None for module in compiled)
    assert registry.base.vae.encoder._compiled_call_impl is None  # once per image prompt: not worth it
    assert registry.unclip.unet._compiled_call_impl is None  # rare; its first job would compile
    assert list(registry.warm_up_seconds) == [(FAST["width"], FAST["height"])]
    graphs = counters["stats"]["unique_graphs"]
    render_job_images(registry, make_spec("another prompt", **FAST, seed=11))
    assert counters["stats"]["unique_graphs"] == graphs, "a job in a warmed bucket compiled again"


def test_bfloat16_renders_with_the_default_settings(tiny_models: ModelPaths) -> None:
    registry = ModelRegistry(tiny_models, device="cpu", dtype="bfloat16")
    images = render_job_images(registry, make_spec(**FAST))
    assert registry.base.unet.dtype == registry.base.vae.dtype == torch.bfloat16
    assert [image.size for image in images] == [(FAST["width"], FAST["height"])] * 4
    assert all(pixels(image).std() > 0 for image in images)  # not NaN cast to black


def test_warm_up_sizes_default_to_every_bucket_when_compiling() -> None:
    assert warm_up_sizes(PerformanceSettings()) == []
    assert warm_up_sizes(PerformanceSettings(compile=True)) == list(ALL_BUCKETS)
    assert len(ALL_BUCKETS) == 9 and (768, 1344) in ALL_BUCKETS
    assert warm_up_sizes(PerformanceSettings(warm_buckets=["1344x768", "1024X1024"])) == [
        (1344, 768),
        (1024, 1024),
    ]
    assert warm_up_sizes(PerformanceSettings(compile=True, warm_buckets=[])) == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOJOURN_PERFORMANCE__COMPILE", "true")
    monkeypatch.setenv("SOJOURN_PERFORMANCE__COMPILE_MODE", "max-autotune-no-cudagraphs")
    monkeypatch.setenv("SOJOURN_PERFORMANCE__WARM_BUCKETS", '["1344x768"]')
    performance = Settings(_env_file=None).performance  # type: ignore[call-arg]
    assert performance.compile and performance.compile_mode == "max-autotune-no-cudagraphs"
    assert performance.warm_buckets == ["1344x768"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sdpa": False}, "FUSE_QKV runs on SDPA"),
        ({"warm_buckets": ["1344:768"]}, "not WIDTHxHEIGHT"),
        ({"warm_buckets": ["1000x771"]}, "multiples of 8"),
        ({"compile_mode": "fastest"}, "max-autotune-no-cudagraphs"),
    ],
)
def test_impossible_settings_say_why(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PerformanceSettings(**fields)  # type: ignore[arg-type]
