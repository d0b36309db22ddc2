"""The tiny models: real architectures, real wiring, loadable through `from_pretrained`, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    StableUnCLIPImg2ImgPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from transformers import CLIPTokenizer

from inference import tiny_models
from inference.tiny_models import make_tiny_models
from sojourn.settings import ModelPaths


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> ModelPaths:
    return make_tiny_models(tmp_path_factory.mktemp("tiny-models"))


def test_the_four_folders_are_where_the_paths_say(paths: ModelPaths) -> None:
    assert [Path(p).name for p in (paths.base, paths.refiner, paths.unclip, paths.vae)] == [
        "sdxl-base",
        "sdxl-refiner",
        "unclip",
        "vae",
    ]
    assert paths.are_local()


def test_sdxl_base_loads_with_text_time_conditioning(paths: ModelPaths) -> None:
    base = StableDiffusionXLPipeline.from_pretrained(paths.base)
    unet = base.unet.config
    assert unet.addition_embed_type == "text_time"
    assert unet.projection_class_embeddings_input_dim == (
        unet.addition_time_embed_dim * 6 + base.text_encoder_2.config.projection_dim
    )
    assert unet.cross_attention_dim == (
        base.text_encoder.config.hidden_size + base.text_encoder_2.config.hidden_size
    )
    assert base.vae_scale_factor == 8


def test_sdxl_refiner_loads_with_only_the_second_encoder_and_aesthetic_score(paths: ModelPaths) -> None:
    refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(paths.refiner)
    assert refiner.text_encoder is None and refiner.tokenizer is None
    assert refiner.config.requires_aesthetics_score
    unet = refiner.unet.config
    assert unet.projection_class_embeddings_input_dim == (
        unet.addition_time_embed_dim * 5 + refiner.text_encoder_2.config.projection_dim
    )
    assert unet.cross_attention_dim == refiner.text_encoder_2.config.hidden_size


def test_unclip_loads_with_image_embedding_conditioning(paths: ModelPaths) -> None:
    unclip = StableUnCLIPImg2ImgPipeline.from_pretrained(paths.unclip)
    assert unclip.unet.config.class_embed_type == "projection"
    assert unclip.unet.config.projection_class_embeddings_input_dim == (
        2 * unclip.image_encoder.config.projection_dim
    )
    assert unclip.image_normalizer.config.embedding_dim == unclip.image_encoder.config.projection_dim


def test_standalone_vae_keeps_real_geometry(paths: ModelPaths) -> None:
    vae = AutoencoderKL.from_pretrained(paths.vae)
    assert len(vae.config.block_out_channels) == 4
    assert not vae.config.force_upcast  # stands in for the fp16-fix VAE
    with torch.inference_mode():
        latents = vae.encode(torch.zeros(1, 3, 256, 192)).latent_dist.mode()
    assert latents.shape == (1, 4, 32, 24)


def test_tokenizers_are_stored_like_real_clip_checkpoints(paths: ModelPaths) -> None:
    folder = Path(paths.base) / "tokenizer_2"
    assert {p.name for p in folder.iterdir()} >= {"vocab.json", "merges.txt"}
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    assert tokenizer.model_max_length == 77
    assert tokenizer.eos_token_id == max(tokenizer.get_vocab().values())
    ids = tokenizer("a lighthouse, 灯台 🌊", padding="max_length", truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in ids[1 : ids.index(tokenizer.eos_token_id)]


def test_weights_are_seeded_and_leave_the_global_rng_alone(paths: ModelPaths) -> None:
    torch.manual_seed(5)
    rebuilt = tiny_models.build_sdxl_base().unet.state_dict()
    after_build = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after_build)

    saved = UNet2DConditionModel.from_pretrained(paths.base, subfolder="unet").state_dict()
    assert rebuilt.keys() == saved.keys()
    assert all(torch.equal(rebuilt[name], saved[name]) for name in saved)


def test_unclip_makes_variations_from_an_image_a_prompt_and_a_noise_level(paths: ModelPaths) -> None:
    unclip = StableUnCLIPImg2ImgPipeline.from_pretrained(paths.unclip)
    unclip.set_progress_bar_config(disable=True)
    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))

    def vary(noise_level: int) -> np.ndarray:
        with torch.inference_mode():
            result = unclip(
                image=source,
                prompt="a lighthouse",
                noise_level=noise_level,
                num_inference_steps=2,
                width=64,
                height=128,
                generator=torch.Generator("cpu").manual_seed(0),
            )
        assert result.images[0].size == (64, 128)
        return np.asarray(result.images[0])

    assert not np.array_equal(vary(0), vary(500))
