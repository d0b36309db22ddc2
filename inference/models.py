"""The worker's models: every pipeline a job can need, loaded once per process and kept.

The SDXL base, the refiner built on the base's second text encoder and VAE (one copy of each in
memory), the base's img2img and inpainting views (`from_pipe`: no new weights), and Stable unCLIP
for strong variations, which shares nothing with SDXL and so loads on first use only. Each model
is set up as `PerformanceSettings` says (attention, memory layout, torch.compile) as it loads.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, TypeVar

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
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
from sojourn.prompt.aspect import ALL_BUCKETS
from sojourn.settings import ModelPaths, PerformanceSettings

log = logging.getLogger(__name__)
Pipe = TypeVar("Pipe", bound=DiffusionPipeline)
# Compiled graphs per code object before dynamo gives up and runs it uncompiled (its default is 8).
# Both UNets and the VAE decoder share `nn.Module._call_impl`, and each needs a graph per bucket,
# batch size (a grid, an upscale) and scheduler timestep dtype.
RECOMPILE_LIMIT = 256
WARM_UP_STEPS = 5  # enough for the refiner to run too (it takes the last 20 % of the schedule)


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
        performance: PerformanceSettings | None = None,
    ) -> None:
        self.models = models
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.performance = performance or PerformanceSettings()
        self.load_counts: Counter[str] = Counter()
        self.warm_up_seconds: dict[tuple[int, int], float] = {}  # per (width, height), by `preload`
        self._tuned: set[int] = set()  # id() of each module set up already (pipelines share them)
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
            self._base = self._prepare(pipe, compile_models=True)
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
            self._refiner = self._prepare(pipe, compile_models=True)
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
            # Not compiled: Vary (Strong) is rare, and its first job would wait for the compiler.
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
        """Load what a text-to-image job needs now rather than on the first job, and render each
        warm-up size once (with `compile` on, that is when each bucket compiles)."""
        _ = self.refiner
        for width, height in warm_up_sizes(self.performance):
            if (width, height) not in self.warm_up_seconds:
                self.warm_up(width, height)

    def warm_up(self, width: int, height: int) -> float:
        """Render one short grid at `width`×`height` through the worker's own path; its seconds."""
        # Here, not at the top: the renderers import this module.
        from inference.render import render_job_images
        from sojourn.spec import JobSpec, PromptPart

        spec = JobSpec(
            prompt=(PromptPart(text="warm-up"),), seed=0, width=width, height=height, steps=WARM_UP_STEPS
        )
        started = time.perf_counter()
        render_job_images(self, spec)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = self.warm_up_seconds[width, height] = time.perf_counter() - started
        log.info(
            "warm-up %d×%d: %.1f s%s",
            width,
            height,
            seconds,
            " (compiling)" if self.performance.compile else "",
        )
        return seconds

    def checkpoint_scheduler_config(self, pipe: DiffusionPipeline) -> Any:
        """The scheduler config `pipe` was loaded with, untouched by later swaps."""
        return self._scheduler_configs[id(pipe)]

    def use_scheduler(self, pipe: DiffusionPipeline, name: str) -> None:
        """Swap `pipe`'s scheduler for a fresh one (cheap), built from the checkpoint's own config."""
        pipe.scheduler = make_scheduler(name, self.checkpoint_scheduler_config(pipe))

    def _prepare(self, pipe: Pipe, *, compile_models: bool = False) -> Pipe:
        pipe.to(self.device)
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if module is not None and id(module) not in self._tuned:
                self._tuned.add(id(module))
                tune(module, self.performance, compile_module=compile_models)
        if getattr(pipe, "vae", None) is not None:
            # Decode the four images one at a time: a quarter of the peak memory for little time.
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        self._scheduler_configs[id(pipe)] = pipe.scheduler.config
        return pipe


def warm_up_sizes(performance: PerformanceSettings) -> list[tuple[int, int]]:
    """The (width, height) sizes `preload` renders once: the setting's, or every bucket when compiling."""
    if performance.warm_buckets is None:
        return list(ALL_BUCKETS) if performance.compile else []
    sizes = [size.lower().partition("x") for size in performance.warm_buckets]
    return [(int(width), int(height)) for width, _, height in sizes]


def tune(
    model: UNet2DConditionModel | AutoencoderKL, performance: PerformanceSettings, *, compile_module: bool
) -> None:
    """Set up a UNet or VAE, in place, as the settings say: memory layout, attention, compiling."""
    if performance.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-arg]  # diffusers wraps `to`
    if getattr(model, "attn_processors", None):
        if performance.fuse_qkv:
            fuse_qkv(model)
        else:
            model.set_attn_processor(AttnProcessor2_0() if performance.sdpa else AttnProcessor())
    if compile_module and performance.compile:
        allow_recompiles()
        # The VAE's encoder runs once per image-prompt job: only its decoder is worth compiling.
        target = model.decoder if isinstance(model, AutoencoderKL) else model
        target.compile(mode=performance.compile_mode, dynamic=performance.compile_dynamic)


def fuse_qkv(model: UNet2DConditionModel | AutoencoderKL) -> None:
    """Query, key and value projections as one matmul (`FusedAttnProcessor2_0`, on SDPA).

    diffusers keeps the separate projections beside the fused one, which would add about a tenth
    to a UNet's weights; here they become views into the fused weight, so they cost nothing and
    `unfuse_qkv_projections` still works.
    """
    model.fuse_qkv_projections()
    for module in model.modules():
        if isinstance(module, Attention) and module.fused_projections:
            if hasattr(module, "to_qkv"):
                _share_weights(module.to_qkv, [module.to_q, module.to_k, module.to_v])
            elif hasattr(module, "to_kv"):
                _share_weights(module.to_kv, [module.to_k, module.to_v])


def _share_weights(fused: nn.Linear, parts: list[nn.Linear]) -> None:
    start = 0
    for part in parts:
        rows = part.out_features
        part.weight = nn.Parameter(fused.weight.data[start : start + rows], requires_grad=False)
        if part.bias is not None and fused.bias is not None:
            part.bias = nn.Parameter(fused.bias.data[start : start + rows], requires_grad=False)
        start += rows


def allow_recompiles() -> None:
    """Let dynamo keep a compiled graph per shape rather than fall back to eager after 8."""
    dynamo_config = torch._dynamo.config
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    dynamo_config.accumulated_recompile_limit = max(
        dynamo_config.accumulated_recompile_limit, RECOMPILE_LIMIT * 4
    )
