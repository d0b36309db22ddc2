"""The worker's models and the text-to-image grid (derived jobs, the buttons, are in `derived.py`).

Models load once per process, lazily, and stay loaded: the SDXL base, the refiner built on the
base's second text encoder and VAE (one copy of each in memory), the base's img2img and inpainting
views (`from_pipe`: no new weights), and Stable unCLIP for variations.
A job renders as an ensemble of experts: the base denoises the first 80 % of the schedule and hands
its latents to the refiner for the rest. Weighted prompts become embeddings here, so the pipelines
only ever see tensors.
"""

from __future__ import annotations

import gc
import hashlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from compel import Compel, ReturnedEmbeddingsType
from compel.prompt_parser import FlattenedPrompt, Fragment
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    StableUnCLIPImg2ImgPipeline,
)
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image, ImageOps
from torch import nn

from inference.errors import GpuOutOfMemory, JobCancelled
from sojourn.prompt import emphasis_segments
from sojourn.settings import ModelPaths
from sojourn.spec import JobSpec, image_prompt_strength

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, bytes | None], None]

REFINER_START = 0.8  # fraction of the schedule the base denoises before the refiner takes over
PREVIEW_EVERY = 5
PREVIEW_MAX_SIDE = 96
CHAOS_STRENGTH = 0.4  # at --chaos 100, per-image noise is this fraction of each channel's spread
WEIRD_STRENGTH = 0.6  # at --weird 3000, the shared offset is this fraction of each channel's spread
WEIRD_MAX = 3000

# ---------------------------------------------------------------------------------------------------
# Devices and dtypes
# ---------------------------------------------------------------------------------------------------

_DTYPES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
}


def resolve_device(setting: str | torch.device = "auto") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU."""
    if isinstance(setting, torch.device):
        return setting
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is set to {setting!r} but no CUDA GPU is visible: set SOJOURN_DEVICE=cpu")
    return device


def resolve_dtype(setting: str | torch.dtype, device: torch.device) -> torch.dtype:
    """`auto` is float16 on CUDA, float32 elsewhere."""
    if isinstance(setting, torch.dtype):
        return setting
    if setting == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[setting]
    except KeyError:
        raise ValueError(f"unknown dtype {setting!r}: use auto, float16, bfloat16 or float32") from None


# ---------------------------------------------------------------------------------------------------
# Schedulers
# ---------------------------------------------------------------------------------------------------

SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "dpmpp_2m_sde_karras": (
        DPMSolverMultistepScheduler,
        {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
    ),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {}),
}
DEFAULT_SCHEDULER = "dpmpp_2m_karras"


def make_scheduler(name: str, base_config: Any) -> SchedulerMixin:
    """A fresh scheduler by sojourn name, built from a checkpoint's own scheduler config."""
    try:
        cls, options = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}") from None
    return cls.from_config(base_config, **options)


# ---------------------------------------------------------------------------------------------------
# The model registry
# ---------------------------------------------------------------------------------------------------


class ModelRegistry:
    """The process's pipelines, each loaded on first use and kept.

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
        self._prompt_encoder: _PromptEncoder | None = None
        self._scheduler_configs: dict[int, Any] = {}  # by id() of the pipeline, which lives as long

    @property
    def load_count(self) -> int:
        return sum(self.load_counts.values())

    @property
    def base(self) -> StableDiffusionXLPipeline:
        if self._base is None:
            log.info("loading SDXL base from %s with the VAE from %s", self.models.base, self.models.vae)
            # The standalone VAE is the fp16-safe one; the checkpoint's own VAE overflows in float16.
            vae = AutoencoderKL.from_pretrained(self.models.vae, dtype=self.dtype)
            self.load_counts["vae"] += 1
            pipe = StableDiffusionXLPipeline.from_pretrained(self.models.base, vae=vae, dtype=self.dtype)
            self.load_counts["base"] += 1
            self._base = self._prepare(pipe)
        return self._base

    @property
    def refiner(self) -> StableDiffusionXLImg2ImgPipeline:
        if self._refiner is None:
            base = self.base
            log.info("loading SDXL refiner from %s", self.models.refiner)
            pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
                self.models.refiner, text_encoder_2=base.text_encoder_2, vae=base.vae, dtype=self.dtype
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
            pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(self.models.unclip, dtype=self.dtype)
            self.load_counts["unclip"] += 1
            self._unclip = self._prepare(pipe)
        return self._unclip

    @property
    def prompt_encoder(self) -> _PromptEncoder:
        if self._prompt_encoder is None:
            self._prompt_encoder = _PromptEncoder(self.base)
        return self._prompt_encoder

    def loaded_pipelines(self) -> dict[str, DiffusionPipeline]:
        """The pipelines built so far, by name (loading nothing)."""
        pipes = {
            "base": self._base,
            "refiner": self._refiner,
            "base_img2img": self._base_img2img,
            "inpaint": self._inpaint,
            "unclip": self._unclip,
        }
        return {name: pipe for name, pipe in pipes.items() if pipe is not None}

    def preload(self) -> None:
        """Load what a txt2img job needs now rather than on the first job."""
        _ = self.refiner

    def checkpoint_scheduler_config(self, pipe: DiffusionPipeline) -> Any:
        """The scheduler config `pipe` was loaded with, untouched by later swaps."""
        return self._scheduler_configs[id(pipe)]

    def use_scheduler(self, pipe: DiffusionPipeline, name: str) -> None:
        """Swap `pipe`'s scheduler for a fresh one (cheap), built from the checkpoint's own config."""
        pipe.scheduler = make_scheduler(name, self.checkpoint_scheduler_config(pipe))

    def _prepare(self, pipe: DiffusionPipeline) -> Any:
        pipe.to(self.device)
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if module is not None:
                # Most convolutions run faster in NHWC (cuDNN and oneDNN alike).
                module.to(memory_format=torch.channels_last)
                _use_sdpa(module)
        if getattr(pipe, "vae", None) is not None:
            # Decode the four images one at a time: a quarter of the peak memory for little time.
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        self._scheduler_configs[id(pipe)] = pipe.scheduler.config
        return pipe


def _use_sdpa(model: nn.Module) -> None:
    """Every attention layer on PyTorch 2 scaled-dot-product attention, never the slow fallback."""
    if getattr(model, "attn_processors", None):
        model.set_attn_processor(AttnProcessor2_0())


# ---------------------------------------------------------------------------------------------------
# Weighted prompts → embeddings
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Embedding:
    """Conditioning for one text, or a batch: token embeddings of both encoders, and the pooled one."""

    tokens: torch.Tensor  # (batch, 77·chunks, width_1 + width_2)
    pooled: torch.Tensor  # (batch, pooled width)


def _blend(embeddings: Sequence[_Embedding], weights: Sequence[float]) -> _Embedding:
    """Weighted average (weights normalised to sum 1) of same-length embeddings."""
    total = sum(weights)
    tokens = torch.zeros_like(embeddings[0].tokens)
    pooled = torch.zeros_like(embeddings[0].pooled)
    for embedding, weight in zip(embeddings, weights, strict=True):
        tokens += embedding.tokens * (weight / total)
        pooled += embedding.pooled * (weight / total)
    return _Embedding(tokens=tokens, pooled=pooled)


class _PromptEncoder:
    """A1111-weighted text → SDXL embeddings, through one compel per text encoder.

    Long prompts are not truncated: they run through the encoders in 77-token chunks, and every
    embedding of a job is padded (with the empty prompt's chunk) to the longest one.
    """

    def __init__(self, base: StableDiffusionXLPipeline) -> None:
        kind = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED  # what SDXL was trained on
        self.encoders = (
            Compel(
                tokenizer=base.tokenizer,
                text_encoder=base.text_encoder,
                returned_embeddings_type=kind,
                truncate_long_prompts=False,
            ),
            Compel(
                tokenizer=base.tokenizer_2,
                text_encoder=base.text_encoder_2,
                returned_embeddings_type=kind,
                truncate_long_prompts=False,
                requires_pooled=True,
            ),
        )
        self.width_1 = base.text_encoder.config.hidden_size

    def encode(self, text: str) -> _Embedding:
        segments = [(part, weight) for part, weight in emphasis_segments(text) if part] or [("", 1.0)]
        prompt = FlattenedPrompt([Fragment(part, weight) for part, weight in segments])
        hidden = [
            encoder.build_conditioning_tensor_for_prompt_object(prompt)[0][0] for encoder in self.encoders
        ]
        hidden = self._pad(hidden)
        plain_text = "".join(part for part, _ in segments)
        pooled = self.encoders[1].conditioning_provider.get_pooled_embeddings([plain_text])
        return _Embedding(tokens=torch.cat(hidden, dim=-1).float(), pooled=pooled.float())

    def pad_to_same_length(self, embeddings: list[_Embedding]) -> list[_Embedding]:
        length = max(e.tokens.shape[1] for e in embeddings)
        return [self._pad_embedding(e, length) for e in embeddings]

    def _pad(self, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        length = max(h.shape[1] for h in hidden)
        return [self._pad_one(h, encoder, length) for h, encoder in zip(hidden, self.encoders, strict=True)]

    def _pad_embedding(self, embedding: _Embedding, length: int) -> _Embedding:
        if embedding.tokens.shape[1] == length:
            return embedding
        halves = (embedding.tokens[..., : self.width_1], embedding.tokens[..., self.width_1 :])
        padded = [
            self._pad_one(h, encoder, length).float()
            for h, encoder in zip(halves, self.encoders, strict=True)
        ]
        return _Embedding(tokens=torch.cat(padded, dim=-1), pooled=embedding.pooled)

    @staticmethod
    def _pad_one(hidden: torch.Tensor, encoder: Compel, length: int) -> torch.Tensor:
        empty = encoder.conditioning_provider.empty_z.to(hidden.device, hidden.dtype)
        while hidden.shape[1] < length:
            hidden = torch.cat([hidden, empty], dim=1)
        return hidden


@dataclass(frozen=True)
class JobConditioning:
    """Batched conditioning for one job: one row per image."""

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor
    negative_pooled_prompt_embeds: torch.Tensor

    def as_kwargs(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {
            "prompt_embeds": self.prompt_embeds.to(device, dtype),
            "negative_prompt_embeds": self.negative_prompt_embeds.to(device, dtype),
            "pooled_prompt_embeds": self.pooled_prompt_embeds.to(device, dtype),
            "negative_pooled_prompt_embeds": self.negative_pooled_prompt_embeds.to(device, dtype),
        }

    def second_encoder_only(self, width_1: int) -> JobConditioning:
        """The refiner's view: it has only the second text encoder, so only that half of the tokens."""
        return JobConditioning(
            prompt_embeds=self.prompt_embeds[..., width_1:],
            negative_prompt_embeds=self.negative_prompt_embeds[..., width_1:],
            pooled_prompt_embeds=self.pooled_prompt_embeds,
            negative_pooled_prompt_embeds=self.negative_pooled_prompt_embeds,
        )


@torch.inference_mode()
def encode_job_prompt(registry: ModelRegistry, spec: JobSpec) -> tuple[JobConditioning, JobConditioning]:
    """Conditioning for the base and for the refiner, batched over the job's four images.

    Positive parts blend by weight (normalised to sum 1); the style suffix is one more part weighing
    `stylize / 1000`. Negative parts join the negative prompt, which weighs 1, in the negative
    conditioning. `--weird` shifts every image along one shared random direction; `--chaos` adds
    noise seeded by each image's own seed, so image k still equals a run with seed + k.
    """
    encoder = registry.prompt_encoder
    cache: dict[str, _Embedding] = {}

    def encode(text: str) -> _Embedding:
        if text not in cache:
            cache[text] = encoder.encode(text)
        return cache[text]

    positives = [(part.text, part.weight) for part in spec.prompt if part.weight > 0]
    if spec.style_suffix and spec.stylize > 0 and not spec.raw:
        positives.append((spec.style_suffix, spec.stylize / 1000))
    negatives = [(part.text, -part.weight) for part in spec.prompt if part.weight < 0]
    if not positives:
        positives = [("", 1.0)]
    negative_is_empty = not spec.negative_prompt.strip() and not negatives
    negatives.insert(0, (spec.negative_prompt, 1.0))

    texts = [text for text, _ in positives + negatives]
    padded = dict(zip(texts, encoder.pad_to_same_length([encode(t) for t in texts]), strict=True))
    positive = _blend([padded[t] for t, _ in positives], [w for _, w in positives])
    negative = _blend([padded[t] for t, _ in negatives], [w for _, w in negatives])

    per_image = [positive] * len(spec.image_seeds())
    if spec.weird > 0:
        direction = _seeded_normal(_stable_seed("weird", _prompt_key(spec)), positive)
        offset = WEIRD_STRENGTH * min(spec.weird, WEIRD_MAX) / WEIRD_MAX
        per_image = [_shift(e, direction, offset, reference=positive) for e in per_image]
    if spec.chaos > 0:
        strength = CHAOS_STRENGTH * min(spec.chaos, 100) / 100
        per_image = [
            _shift(e, _seeded_normal(_stable_seed("chaos", seed), positive), strength, reference=positive)
            for e, seed in zip(per_image, spec.image_seeds(), strict=True)
        ]

    batch = len(per_image)
    prompt_embeds = torch.cat([e.tokens for e in per_image])
    pooled = torch.cat([e.pooled for e in per_image])

    def negatives_for(pipe: DiffusionPipeline) -> tuple[torch.Tensor, torch.Tensor]:
        # Match the checkpoint's convention for an empty negative prompt (SDXL base: zeros).
        if negative_is_empty and pipe.config.get("force_zeros_for_empty_prompt", False):
            return torch.zeros_like(prompt_embeds), torch.zeros_like(pooled)
        return negative.tokens.expand(batch, -1, -1), negative.pooled.expand(batch, -1)

    base_negative, base_negative_pooled = negatives_for(registry.base)
    base = JobConditioning(prompt_embeds, base_negative, pooled, base_negative_pooled)
    refiner_negative, refiner_negative_pooled = negatives_for(registry.refiner)
    refiner = JobConditioning(prompt_embeds, refiner_negative, pooled, refiner_negative_pooled)
    return base, refiner.second_encoder_only(encoder.width_1)


def _prompt_key(spec: JobSpec) -> str:
    return "\x1f".join(f"{part.text}::{part.weight}" for part in spec.prompt)


def _stable_seed(purpose: str, value: object) -> int:
    """A seed derived from `value` that is the same in every process (unlike `hash`)."""
    digest = hashlib.sha256(f"{purpose}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _seeded_normal(seed: int, like: _Embedding) -> _Embedding:
    generator = torch.Generator("cpu").manual_seed(seed)
    tokens = torch.randn(like.tokens.shape, generator=generator, dtype=torch.float32)
    pooled = torch.randn(like.pooled.shape, generator=generator, dtype=torch.float32)
    return _Embedding(tokens=tokens, pooled=pooled)


def _shift(embedding: _Embedding, noise: _Embedding, strength: float, *, reference: _Embedding) -> _Embedding:
    """Add `noise` scaled per channel by the reference's spread, so every channel moves comparably."""
    token_scale = reference.tokens.std(dim=1, keepdim=True)
    pooled_scale = reference.pooled.abs().mean()
    return _Embedding(
        tokens=embedding.tokens + strength * token_scale * noise.tokens.to(embedding.tokens.device),
        pooled=embedding.pooled + strength * pooled_scale * noise.pooled.to(embedding.pooled.device),
    )


# ---------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where the base stops and whether (and where) the refiner runs; step counts for progress."""

    base_end: float | None
    base_steps: int
    refiner_end: float | None
    refiner_steps: int

    @property
    def refine(self) -> bool:
        return self.refiner_steps > 0


def _plan(scheduler: SchedulerMixin, steps: int, stop: int) -> _Plan:
    """Split `steps` between base and refiner as the pipelines will (same timestep cut-offs)."""
    end = min(max(stop, 1), 100) / 100
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.tolist()
    train_steps = scheduler.config.num_train_timesteps

    def cutoff(fraction: float) -> int:
        return round(train_steps - fraction * train_steps)

    base_end = min(end, REFINER_START)
    base_steps = sum(t >= cutoff(base_end) for t in timesteps)
    refiner_end = end if end < 1 else None
    refiner_steps = 0
    if end > REFINER_START:
        refiner_steps = sum(
            cutoff(REFINER_START) > t >= (cutoff(end) if refiner_end else -1) for t in timesteps
        )
    if refiner_steps == 0:  # e.g. --stop 81: nothing is left for the refiner; the base finishes
        return _Plan(
            base_end=base_end if base_end < 1 else None,
            base_steps=base_steps,
            refiner_end=None,
            refiner_steps=0,
        )
    return _Plan(
        base_end=REFINER_START, base_steps=base_steps, refiner_end=refiner_end, refiner_steps=refiner_steps
    )


def _img2img_base_steps(
    scheduler: SchedulerMixin, steps: int, strength: float, base_end: float | None
) -> int:
    """Steps the base runs on an image prompt: the strength's share of the schedule, up to `base_end`."""
    scheduler.set_timesteps(steps)
    start = max(steps - min(int(steps * strength), steps), 0)
    timesteps = scheduler.timesteps.tolist()[start * scheduler.order :]
    if base_end is None:
        return len(timesteps)
    cutoff = round(scheduler.config.num_train_timesteps - base_end * scheduler.config.num_train_timesteps)
    return sum(t >= cutoff for t in timesteps)


def fit_image_prompt(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image prompt cropped to the job's aspect (centred) and resized to its resolution."""
    return ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


class _StepReporter:
    """`callback_on_step_end` for both pipelines: overall progress, previews and cancellation."""

    def __init__(
        self,
        planned_steps: int,
        on_progress: ProgressCallback | None,
        is_cancelled: Callable[[], bool] | None,
        preview_every: int,
    ) -> None:
        self.planned_steps = max(planned_steps, 1)
        self.on_progress = on_progress
        self.is_cancelled = is_cancelled
        self.preview_every = preview_every
        self.done = 0
        self.percent = 0
        self.cancelled = False

    def __call__(
        self, pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        if self._step_done(tensors["latents"]):
            pipe._interrupt = True
        return tensors

    def legacy_callback(self, step: int, timestep: Any, latents: torch.Tensor) -> None:
        """The old `callback=` hook, for pipelines without `callback_on_step_end` or `interrupt`
        (Stable unCLIP): there the only way to stop is to raise out of the denoising loop."""
        if self._step_done(latents):
            raise JobCancelled()

    def _step_done(self, latents: torch.Tensor) -> bool:
        """Count a step, report it; True when the job was cancelled meanwhile."""
        self.done += 1
        self.percent = min(100, self.done * 100 // self.planned_steps)
        if self.on_progress is not None:
            preview = None
            if self.preview_every > 0 and (self.done % self.preview_every == 0 or self.percent == 100):
                preview = latent_preview_png(latents[0])
            self.on_progress(self.percent, preview)
        if self.is_cancelled is not None and self.is_cancelled():
            self.cancelled = True
        return self.cancelled

    def finish(self) -> None:
        """Report 100 % if the plan and the pipelines disagreed on the step count."""
        if self.on_progress is not None and self.percent < 100:
            self.on_progress(100, None)


# An approximate linear map from SDXL latent channels to RGB, good enough for a thumbnail.
_LATENT_TO_RGB = torch.tensor(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]
)


def latent_preview_png(latents: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """A small PNG of one image's latents (C×H×W) by a linear projection: no VAE, ~1 ms."""
    latents = latents.detach().float().cpu()
    height, width = latents.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = nn.functional.interpolate(latents[None], size=size, mode="area")[0]
    if small.shape[0] == _LATENT_TO_RGB.shape[0]:
        rgb = torch.einsum("chw,cr->rhw", small, _LATENT_TO_RGB)
        rgb = (rgb + 1) / 2
    else:  # another latent space: show its first three channels, stretched
        rgb = small[:3]
        rgb = (rgb - rgb.amin()) / (rgb.amax() - rgb.amin() + 1e-6)
    pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def seamless_tiling(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Circular padding on every convolution, so the image wraps around at its edges (`--tile`)."""
    convolutions = [m for module in modules for m in module.modules() if isinstance(m, nn.Conv2d)]
    previous = [conv.padding_mode for conv in convolutions]
    try:
        for conv in convolutions:
            conv.padding_mode = "circular"
        yield
    finally:
        for conv, mode in zip(convolutions, previous, strict=True):
            conv.padding_mode = mode


@contextmanager
def vae_tiling(vae: AutoencoderKL) -> Iterator[None]:
    """Encode and decode in overlapping tiles for the duration, then back to whole images.

    The VAE is shared by every SDXL pipeline of the registry, so the setting must not outlive the job.
    """
    was_tiling = vae.use_tiling
    vae.enable_tiling()
    try:
        yield
    finally:
        if not was_tiling:
            vae.disable_tiling()


@contextmanager
def _out_of_memory_as_error(device: torch.device) -> Iterator[None]:
    """Turn an out-of-memory error into `GpuOutOfMemory` after freeing what the failed job held."""
    out_of_memory = False
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError):
        out_of_memory = True  # leave the except block first, so its traceback frames are released
    except RuntimeError as error:
        # Host memory (CPU or MPS) failures surface as allocator RuntimeErrors, not OutOfMemoryError.
        if not _is_allocation_failure(error):
            raise
        out_of_memory = True
    if out_of_memory:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise GpuOutOfMemory()


def _is_allocation_failure(error: RuntimeError) -> bool:
    message = str(error)
    return "can't allocate memory" in message or "out of memory" in message.lower()


def image_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image, so image k is the same as a run with its seed alone."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def render_grid_images(
    registry: ModelRegistry,
    spec: JobSpec,
    *,
    on_progress: ProgressCallback | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    preview_every: int = PREVIEW_EVERY,
    init_image: Image.Image | None = None,
) -> list[Image.Image]:
    """Render the job's four images (seeds N..N+3) at `spec.width`×`spec.height`.

    With `init_image` (the job's image prompt) the base starts from that picture, fitted to the
    job's resolution, instead of pure noise: img2img at `image_prompt_strength(spec.image_weight)`.
    """
    strength = image_prompt_strength(spec.image_weight) if init_image is not None else None
    return render_with_base_and_refiner(
        registry,
        spec,
        on_progress=on_progress,
        is_cancelled=is_cancelled,
        preview_every=preview_every,
        init_image=init_image,
        strength=strength,
    )


def render_with_base_and_refiner(
    registry: ModelRegistry,
    spec: JobSpec,
    *,
    on_progress: ProgressCallback | None,
    is_cancelled: Callable[[], bool] | None,
    preview_every: int,
    init_image: Image.Image | None,
    strength: float | None,
) -> list[Image.Image]:
    """The ensemble of experts, from noise or (img2img at `strength`) from `init_image`."""
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled()
    with torch.inference_mode(), _out_of_memory_as_error(registry.device):
        base, refiner = registry.base, registry.refiner
        first = registry.base_img2img if init_image is not None else base
        registry.use_scheduler(first, spec.scheduler)
        registry.use_scheduler(refiner, spec.scheduler)
        plan = _plan(first.scheduler, spec.steps, spec.stop)
        base_conditioning, refiner_conditioning = encode_job_prompt(registry, spec)
        image_input: dict[str, Any] = {"width": spec.width, "height": spec.height}
        base_steps = plan.base_steps
        if init_image is not None:
            assert strength is not None, "img2img needs a strength"
            image_input = {
                "image": fit_image_prompt(init_image, spec.width, spec.height),
                "strength": strength,
            }
            base_steps = _img2img_base_steps(first.scheduler, spec.steps, strength, plan.base_end)
        reporter = _StepReporter(base_steps + plan.refiner_steps, on_progress, is_cancelled, preview_every)
        generators = image_generators(spec.image_seeds())
        size = {"original_size": (spec.height, spec.width), "target_size": (spec.height, spec.width)}
        tiling = seamless_tiling([base.unet, refiner.unet, base.vae]) if spec.tile else nullcontext()
        with tiling:
            result = first(
                **base_conditioning.as_kwargs(registry.device, registry.dtype),
                **image_input,
                num_inference_steps=spec.steps,
                denoising_end=plan.base_end,
                guidance_scale=spec.guidance,
                generator=generators,
                output_type="latent" if plan.refine else "pil",
                callback_on_step_end=reporter,
                callback_on_step_end_tensor_inputs=["latents"],
                **size,
            )
            if reporter.cancelled:
                raise JobCancelled()
            if plan.refine:
                result = refiner(
                    image=result.images,
                    **refiner_conditioning.as_kwargs(registry.device, registry.dtype),
                    num_inference_steps=spec.steps,
                    denoising_start=REFINER_START,
                    denoising_end=plan.refiner_end,
                    guidance_scale=spec.guidance,
                    generator=generators,
                    callback_on_step_end=reporter,
                    callback_on_step_end_tensor_inputs=["latents"],
                    **size,
                )
                if reporter.cancelled:
                    raise JobCancelled()
        images: list[Image.Image] = list(result.images)
    reporter.finish()
    return images
