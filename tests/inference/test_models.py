"""The model registry: devices, schedulers, loading once, and pipelines that share their modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inference.devices import resolve_device, resolve_dtype
from inference.models import ModelRegistry
from inference.schedulers import SCHEDULERS, make_scheduler


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


def test_attention_runs_on_sdpa_with_fused_projections_by_default(registry: ModelRegistry) -> None:
    for model in (registry.base.unet, registry.refiner.unet, registry.base.vae):
        assert {type(p).__name__ for p in model.attn_processors.values()} <= {"FusedAttnProcessor2_0"}


def test_image_prompts_use_img2img_built_from_the_base_without_new_weights(registry: ModelRegistry) -> None:
    registry.preload()
    loads = dict(registry.load_counts)
    img2img = registry.base_img2img
    assert img2img.unet is registry.base.unet and img2img.vae is registry.base.vae
    assert img2img.text_encoder_2 is registry.base.text_encoder_2
    assert dict(registry.load_counts) == loads


def test_the_inpainting_pipeline_is_the_base_without_new_weights(registry: ModelRegistry) -> None:
    base = registry.base
    loads = dict(registry.load_counts)
    inpaint = registry.inpaint
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        assert getattr(inpaint, name) is getattr(base, name), name
    assert registry.inpaint is inpaint
    assert dict(registry.load_counts) == loads


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
