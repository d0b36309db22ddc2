"""The worker's models: every pipeline a job can need, loaded once per process and kept.

The SDXL base, the refiner built on the base's second text encoder and VAE (one copy of each in
memory), the base's img2img and inpainting views (`from_pipe`: no new weights), and Stable unCLIP
for strong variations, which shares nothing with SDXL and so loads on first use only.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, TypeVar

import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.stable_diffusion.pipeline_stable_unclip_img2img import StableUnCLIPImg2ImgPipeline
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (
    StableDiffusionXLImg2ImgPipeline,
)
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_inpaint import (
    StableDiffusionXLInpaintPipeline,
)
from torch import nn

from inference.conditioning import PromptEncoder
from inference.devices import resolve_device, resolve_dtype
from inference.schedulers import make_scheduler
from sojourn.model_download import weights_variant
from sojourn.settings import ModelPaths

log = logging.getLogger(__name__)
Pipe = TypeVar("Pipe", bound=DiffusionPipeline)


class ModelRegistry:
    """The process's pipelines, each loaded on first use (or by `preload`) and kept.

    The pipelines share modules and per-job state (scheduler, tiling), so a registry renders one job
    at a time. `load_counts` counts `from_pretrained` calls per model, so a benchmark can prove that
    a second job reloads nothing.
    """

    def __init__(
        self,
        models: ModelPaths,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
    ) -> None:
        self.models = models
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.load_counts: Counter[str] = Counter()
        self._base: StableDiffusionXLPipeline | None = None
        self._refiner: StableDiffusionXLImg2ImgPipeline | None = None
        self._unclip: StableUnCLIPImg2ImgPipeline | None = None
        self._base_img2img: StableDiffusionXLImg2ImgPipeline | None = None
        self._inpaint: StableDiffusionXLInpaintPipeline | None = None
        self._prompt_encoder: PromptEncoder | None = None
        self._scheduler_configs: dict[int, Any] = {}  # by id() of the pipeline, which lives as long

    @property
    def load_count(self) -> int:
        return sum(self.load_counts.values())

    @property
    def base(self) -> StableDiffusionXLPipeline:
        if self._base is None:
            log.info("loading SDXL base from %s with the VAE from %s", self.models.base, self.models.vae)
            # The standalone VAE is the fp16-safe one; the checkpoint's own VAE overflows in float16.
            # A folder from `sojourn models download` holds fp16 files (`*.fp16.safetensors`) only.
            vae = AutoencoderKL.from_pretrained(
                self.models.vae, dtype=self.dtype, variant=weights_variant(self.models.vae)
            )
            self.load_counts["vae"] += 1
            pipe = StableDiffusionXLPipeline.from_pretrained(
                self.models.base, vae=vae, dtype=self.dtype, variant=weights_variant(self.models.base)
            )
            self.load_counts["base"] += 1
            self._base = self._prepare(pipe)
        return self._base

    @property
    def refiner(self) -> StableDiffusionXLImg2ImgPipeline:
        if self._refiner is None:
            base = self.base
            log.info("loading SDXL refiner from %s", self.models.refiner)
            pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
                self.models.refiner,
                text_encoder_2=base.text_encoder_2,
                vae=base.vae,
                dtype=self.dtype,
                variant=weights_variant(self.models.refiner),
            )
            self.load_counts["refiner"] += 1
            self._refiner = self._prepare(pipe)
        return self._refiner

    @property
    def base_img2img(self) -> StableDiffusionXLImg2ImgPipeline:
        """The base as an image-to-image pipeline, for image prompts: the same modules, no new weights."""
        if self._base_img2img is None:
            pipe = StableDiffusionXLImg2ImgPipeline.from_pipe(self.base)
            self._base_img2img = self._prepare(pipe)
        return self._base_img2img

    @property
    def inpaint(self) -> StableDiffusionXLInpaintPipeline:
        """The base as an inpainting pipeline, for zoom out: the same modules, no new weights."""
        if self._inpaint is None:
            pipe = StableDiffusionXLInpaintPipeline.from_pipe(self.base)
            self._inpaint = self._prepare(pipe)
        return self._inpaint

    @property
    def unclip(self) -> StableUnCLIPImg2ImgPipeline:
        if self._unclip is None:
            log.info("loading Stable unCLIP from %s", self.models.unclip)
            pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(
                self.models.unclip, dtype=self.dtype, variant=weights_variant(self.models.unclip)
            )
            self.load_counts["unclip"] += 1
            self._unclip = self._prepare(pipe)
        return self._unclip

    @property
    def prompt_encoder(self) -> PromptEncoder:
        if self._prompt_encoder is None:
            self._prompt_encoder = PromptEncoder(self.base)
        return self._prompt_encoder

    def loaded_pipelines(self) -> dict[str, DiffusionPipeline]:
        """The pipelines built so far, by name (loading nothing)."""
        pipes: dict[str, DiffusionPipeline | None] = {
            "base": self._base,
            "refiner": self._refiner,
            "base_img2img": self._base_img2img,
            "inpaint": self._inpaint,
            "unclip": self._unclip,
        }
        return {name: pipe for name, pipe in pipes.items() if pipe is not None}

    def preload(self) -> None:
        """Load what a text-to-image job needs now rather than on the first job."""
        _ = self.refiner

    def checkpoint_scheduler_config(self, pipe: DiffusionPipeline) -> Any:
        """The scheduler config `pipe` was loaded with, untouched by later swaps."""
        return self._scheduler_configs[id(pipe)]

    def use_scheduler(self, pipe: DiffusionPipeline, name: str) -> None:
        """Swap `pipe`'s scheduler for a fresh one (cheap), built from the checkpoint's own config."""
        pipe.scheduler = make_scheduler(name, self.checkpoint_scheduler_config(pipe))

    def _prepare(self, pipe: Pipe) -> Pipe:
        pipe.to(self.device)
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if module is not None:
                # Most convolutions run faster in NHWC (cuDNN and oneDNN alike).
                module.to(memory_format=torch.channels_last)
                use_sdpa(module)
        if getattr(pipe, "vae", None) is not None:
            # Decode the four images one at a time: a quarter of the peak memory for little time.
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        self._scheduler_configs[id(pipe)] = pipe.scheduler.config
        return pipe


def use_sdpa(model: nn.Module) -> None:
    """Every attention layer on PyTorch 2 scaled-dot-product attention, never the slow fallback."""
    set_processor = getattr(model, "set_attn_processor", None)
    if set_processor is not None and getattr(model, "attn_processors", None):
        set_processor(AttnProcessor2_0())
