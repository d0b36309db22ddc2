"""Random-weight stand-ins for the real model stack, built offline, for tests and benchmarks.

Every model is the real class with the real wiring (two SDXL text encoders, `text_time` micro-conditioning,
an aesthetic-score refiner, a Stable unCLIP image-embedding UNet, a four-block VAE with scale factor 8),
shrunk until a 30-step, 4-image 1024×1024 job takes seconds on a laptop CPU. Each folder is written with
`save_pretrained`, so loading goes through the same `from_pretrained` code as the real checkpoints.
Weights are seeded, so two builds are identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.pipeline_stable_unclip_img2img import StableUnCLIPImg2ImgPipeline
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (
    StableDiffusionXLImg2ImgPipeline,
)
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from sojourn.settings import ModelPaths

# Text encoders: real SDXL uses 768 (CLIP ViT-L) and 1280 (OpenCLIP bigG) wide encoders.
TEXT_HIDDEN_1 = 32
TEXT_HIDDEN_2 = 32
TEXT_PROJECTION_2 = 32
ADDITION_TIME_EMBED_DIM = 8  # real: 256
MAX_TOKENS = 77

# UNets: four levels so that the one transformer block, at the lowest level, attends over 16×16 tokens
# for a 1024 px image; a few channels per level keep the full-resolution convolutions cheap.
UNET_CHANNELS = (4, 8, 16, 16)
UNET_HEADS = (1, 1, 2, 2)
UNET_NORM_GROUPS = 4

# VAE: four blocks (scale factor 8, so 1024 px ↔ 128 latents) of four channels. The mid-block attention is
# off: at 128×128 latents it attends over 16,384 tokens and would cost more than the whole denoising loop.
VAE_CHANNELS = (4, 4, 4, 4)
VAE_NORM_GROUPS = 4
SDXL_VAE_SCALING = 0.13025
SD2_VAE_SCALING = 0.18215

# Stable unCLIP (SD 2.1 based): real image embeddings are 1024 wide; the UNet sees them twice
# (the noised embedding and its noise level).
UNCLIP_EMBED_DIM = 32
UNCLIP_IMAGE_SIZE = 32


def make_tiny_models(out_dir: Path) -> ModelPaths:
    """Build and save the four tiny model folders under `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    paths = ModelPaths(
        base=str(out_dir / "sdxl-base"),
        refiner=str(out_dir / "sdxl-refiner"),
        unclip=str(out_dir / "unclip"),
        vae=str(out_dir / "vae"),
    )
    base = build_sdxl_base()
    base.save_pretrained(paths.base)
    _build_sdxl_refiner(text_encoder_2=base.text_encoder_2, tokenizer_2=base.tokenizer_2).save_pretrained(
        paths.refiner
    )
    _build_unclip().save_pretrained(paths.unclip)
    # Stands in for the fp16-fix VAE: same architecture, its own weights, no forced fp32 upcast.
    with _seeded(4):
        _build_vae(scaling_factor=SDXL_VAE_SCALING, force_upcast=False).save_pretrained(paths.vae)
    for folder in out_dir.glob("*/tokenizer*/"):
        _write_vocab_and_merges(folder)
    return paths


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Deterministic weight init without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def byte_level_vocab() -> dict[str, int]:
    """A CLIP vocabulary that needs no merges: every byte symbol, alone and word-final, then bos and eos."""
    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({f"{s}</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # highest id: CLIP pools at the end-of-text token
    return vocab


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table, which CLIP's BPE works on (printables first)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return table


def _write_vocab_and_merges(folder: Path) -> None:
    """Store a tokenizer as the real CLIP checkpoints do (vocab.json + merges.txt), so loading it
    goes through the same conversion; transformers 5 would otherwise write only tokenizer.json."""
    (folder / "vocab.json").write_text(json.dumps(byte_level_vocab(), ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer.json").unlink(missing_ok=True)


def byte_level_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """A CLIP tokenizer over single bytes (no merges): any text, offline."""
    return CLIPTokenizer(
        vocab=byte_level_vocab(), merges=[], pad_token=pad_token, model_max_length=MAX_TOKENS
    )


def _text_config(hidden: int, projection: int, act: str) -> CLIPTextConfig:
    vocab = byte_level_vocab()
    return CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        projection_dim=projection,
        num_hidden_layers=2,  # SDXL reads the penultimate layer
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        hidden_act=act,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )


def _build_vae(*, scaling_factor: float, force_upcast: bool) -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=VAE_CHANNELS,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=VAE_NORM_GROUPS,
        sample_size=1024,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
        mid_block_add_attention=False,
    ).eval()


def _build_unet(
    *, cross_attention_dim: int, sample_size: int, **conditioning: object
) -> UNet2DConditionModel:
    """A four-level UNet with cross-attention only at the lowest level (cheap self-attention)."""
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        block_out_channels=UNET_CHANNELS,
        attention_head_dim=UNET_HEADS,
        norm_num_groups=UNET_NORM_GROUPS,
        layers_per_block=1,
        transformer_layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        use_linear_projection=True,
        **conditioning,
    ).eval()


def _sdxl_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )


def build_sdxl_base() -> StableDiffusionXLPipeline:
    """The tiny SDXL base, in memory; the same weights every time (seeded)."""
    with _seeded(0):
        text_encoder = CLIPTextModel(_text_config(TEXT_HIDDEN_1, TEXT_HIDDEN_1, "quick_gelu")).eval()
    with _seeded(1):
        text_encoder_2 = CLIPTextModelWithProjection(
            _text_config(TEXT_HIDDEN_2, TEXT_PROJECTION_2, "gelu")
        ).eval()
    with _seeded(2):
        unet = _build_unet(
            cross_attention_dim=TEXT_HIDDEN_1 + TEXT_HIDDEN_2,
            sample_size=128,
            addition_embed_type="text_time",
            addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
            # original size, crop top-left, target size (2 numbers each) + pooled text embedding
            projection_class_embeddings_input_dim=ADDITION_TIME_EMBED_DIM * 6 + TEXT_PROJECTION_2,
        )
    with _seeded(3):
        vae = _build_vae(scaling_factor=SDXL_VAE_SCALING, force_upcast=True)
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=byte_level_tokenizer(),
        tokenizer_2=byte_level_tokenizer(pad_token="!"),  # as in the real SDXL tokenizer_2
        unet=unet,
        scheduler=_sdxl_scheduler(),  # type: ignore[arg-type]  # annotated as the enum of scheduler names
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def _build_sdxl_refiner(
    *, text_encoder_2: CLIPTextModelWithProjection, tokenizer_2: CLIPTokenizer
) -> StableDiffusionXLImg2ImgPipeline:
    with _seeded(5):
        unet = _build_unet(
            cross_attention_dim=TEXT_HIDDEN_2,
            sample_size=128,
            addition_embed_type="text_time",
            addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
            # original size, crop top-left, aesthetic score + pooled text embedding
            projection_class_embeddings_input_dim=ADDITION_TIME_EMBED_DIM * 5 + TEXT_PROJECTION_2,
        )
    with _seeded(3):
        vae = _build_vae(scaling_factor=SDXL_VAE_SCALING, force_upcast=True)
    return StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        # The refiner has no first text encoder; diffusers' annotations do not allow for that.
        text_encoder=None,  # type: ignore[arg-type]
        text_encoder_2=text_encoder_2,
        tokenizer=None,  # type: ignore[arg-type]
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_sdxl_scheduler(),  # type: ignore[arg-type]  # annotated as the enum of scheduler names
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )


def _build_unclip() -> StableUnCLIPImg2ImgPipeline:
    with _seeded(10):
        image_encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=UNCLIP_EMBED_DIM,
                projection_dim=UNCLIP_EMBED_DIM,
                intermediate_size=UNCLIP_EMBED_DIM * 2,
                num_hidden_layers=2,
                num_attention_heads=4,
                image_size=UNCLIP_IMAGE_SIZE,
                patch_size=4,
            )
        ).eval()
    with _seeded(11):
        text_encoder = CLIPTextModel(_text_config(UNCLIP_EMBED_DIM, UNCLIP_EMBED_DIM, "gelu")).eval()
    with _seeded(12):
        unet = _build_unet(
            cross_attention_dim=UNCLIP_EMBED_DIM,
            sample_size=96,
            class_embed_type="projection",
            # the image embedding concatenated with its noise-level embedding
            projection_class_embeddings_input_dim=UNCLIP_EMBED_DIM * 2,
            upcast_attention=True,
        )
    with _seeded(13):
        vae = _build_vae(scaling_factor=SD2_VAE_SCALING, force_upcast=True)
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(
            size={"shortest_edge": UNCLIP_IMAGE_SIZE},
            crop_size={"height": UNCLIP_IMAGE_SIZE, "width": UNCLIP_IMAGE_SIZE},
        ),
        image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=UNCLIP_EMBED_DIM),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=byte_level_tokenizer(pad_token="!"),
        text_encoder=text_encoder,
        unet=unet,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            prediction_type="v_prediction",
            set_alpha_to_one=False,
            steps_offset=1,
            timestep_spacing="leading",
        ),
        vae=vae,
    )
