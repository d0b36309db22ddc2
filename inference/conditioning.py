"""Weighted prompts → SDXL conditioning tensors, with `--chaos` and `--weird` applied.

Weighted prompts become embeddings here, so the pipelines only ever see tensors. Long prompts are
not truncated: they run through the encoders in 77-token chunks, and every embedding of a job is
padded (by compel, with the empty prompt's chunk) to the longest one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from compel import Compel, ReturnedEmbeddingsType
from compel.prompt_parser import FlattenedPrompt, Fragment
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline

from sojourn.prompt import emphasis_segments
from sojourn.spec import JobSpec

CHAOS_STRENGTH = 0.4  # at --chaos 100, per-image noise is this fraction of each channel's spread
WEIRD_STRENGTH = 0.6  # at --weird 3000, the shared offset is this fraction of each channel's spread
WEIRD_MAX = 3000


@dataclass(frozen=True)
class Embedding:
    """Conditioning for one text, or a batch: token embeddings of both encoders, and the pooled one."""

    tokens: torch.Tensor  # (batch, 77·chunks, width_1 + width_2)
    pooled: torch.Tensor  # (batch, pooled width)


def blend(embeddings: Sequence[Embedding], weights: Sequence[float]) -> Embedding:
    """Weighted average (weights normalised to sum 1) of same-length embeddings."""
    total = sum(weights)
    tokens = torch.zeros_like(embeddings[0].tokens)
    pooled = torch.zeros_like(embeddings[0].pooled)
    for embedding, weight in zip(embeddings, weights, strict=True):
        tokens += embedding.tokens * (weight / total)
        pooled += embedding.pooled * (weight / total)
    return Embedding(tokens=tokens, pooled=pooled)


class PromptEncoder:
    """A1111-weighted text → SDXL embeddings, through one compel per text encoder."""

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
        self.width_1: int = base.text_encoder.config.hidden_size

    def encode(self, text: str) -> Embedding:
        segments = [(part, weight) for part, weight in emphasis_segments(text) if part] or [("", 1.0)]
        prompt = FlattenedPrompt([Fragment(part, weight) for part, weight in segments])
        hidden = [
            encoder.build_conditioning_tensor_for_prompt_object(prompt)[0][0] for encoder in self.encoders
        ]
        # The two tokenizers chunk alike for SDXL, so this pads only for a checkpoint whose differ.
        length = max(h.shape[1] for h in hidden)
        hidden = [_pad_to(encoder, h, length) for encoder, h in zip(self.encoders, hidden, strict=True)]
        plain_text = "".join(part for part, _ in segments)
        pooled = self.encoders[1].conditioning_provider.get_pooled_embeddings([plain_text])
        return Embedding(tokens=torch.cat(hidden, dim=-1).float(), pooled=pooled.float())

    def pad_to_same_length(self, embeddings: list[Embedding]) -> list[Embedding]:
        """Every embedding padded to the longest, each encoder's half with that encoder's empty chunk."""
        first, second = (
            encoder.pad_conditioning_tensors_to_same_length([e.tokens[..., part] for e in embeddings])
            for encoder, part in zip(
                self.encoders, (slice(None, self.width_1), slice(self.width_1, None)), strict=True
            )
        )
        return [
            Embedding(tokens=torch.cat([a, b], dim=-1), pooled=e.pooled)
            for e, a, b in zip(embeddings, first, second, strict=True)
        ]


def _pad_to(encoder: Compel, hidden: torch.Tensor, length: int) -> torch.Tensor:
    """`hidden` padded to `length` tokens by compel, which pads a list to its longest member."""
    if hidden.shape[1] == length:
        return hidden
    target = hidden.new_zeros(hidden.shape[0], length, hidden.shape[2])
    return encoder.pad_conditioning_tensors_to_same_length([hidden, target])[0]


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
def encode_job_prompt(
    encoder: PromptEncoder, spec: JobSpec, *, base: DiffusionPipeline, refiner: DiffusionPipeline
) -> tuple[JobConditioning, JobConditioning]:
    """Conditioning for the base and for the refiner, batched over the job's four images.

    Positive parts blend by weight (normalised to sum 1); the style suffix is one more part weighing
    `stylize / 1000`. Negative parts join the negative prompt, which weighs 1, in the negative
    conditioning. `--weird` shifts every image along one shared random direction; `--chaos` adds
    noise seeded by each image's own seed, so image k still equals a run with seed + k.
    """
    cache: dict[str, Embedding] = {}

    def encode(text: str) -> Embedding:
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
    positive = blend([padded[t] for t, _ in positives], [w for _, w in positives])
    negative = blend([padded[t] for t, _ in negatives], [w for _, w in negatives])

    per_image = [positive] * len(spec.image_seeds())
    if spec.weird > 0:
        direction = _seeded_normal(stable_seed("weird", _prompt_key(spec)), positive)
        offset = WEIRD_STRENGTH * min(spec.weird, WEIRD_MAX) / WEIRD_MAX
        per_image = [_shift(e, direction, offset, reference=positive) for e in per_image]
    if spec.chaos > 0:
        strength = CHAOS_STRENGTH * min(spec.chaos, 100) / 100
        per_image = [
            _shift(e, _seeded_normal(stable_seed("chaos", seed), positive), strength, reference=positive)
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

    def conditioning_for(pipe: DiffusionPipeline) -> JobConditioning:
        negative_embeds, negative_pooled = negatives_for(pipe)
        return JobConditioning(prompt_embeds, negative_embeds, pooled, negative_pooled)

    return conditioning_for(base), conditioning_for(refiner).second_encoder_only(encoder.width_1)


def _prompt_key(spec: JobSpec) -> str:
    return "\x1f".join(f"{part.text}::{part.weight}" for part in spec.prompt)


def stable_seed(purpose: str, value: object) -> int:
    """A seed derived from `value` that is the same in every process (unlike `hash`)."""
    digest = hashlib.sha256(f"{purpose}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _seeded_normal(seed: int, like: Embedding) -> Embedding:
    generator = torch.Generator("cpu").manual_seed(seed)
    tokens = torch.randn(like.tokens.shape, generator=generator, dtype=torch.float32)
    pooled = torch.randn(like.pooled.shape, generator=generator, dtype=torch.float32)
    return Embedding(tokens=tokens, pooled=pooled)


def _shift(embedding: Embedding, noise: Embedding, strength: float, *, reference: Embedding) -> Embedding:
    """Add `noise` scaled per channel by the reference's spread, so every channel moves comparably."""
    token_scale = reference.tokens.std(dim=1, keepdim=True)
    pooled_scale = reference.pooled.abs().mean()
    return Embedding(
        tokens=embedding.tokens + strength * token_scale * noise.tokens.to(embedding.tokens.device),
        pooled=embedding.pooled + strength * pooled_scale * noise.pooled.to(embedding.pooled.device),
    )


def plain_prompts(spec: JobSpec) -> tuple[str, str]:
    """The prompt and negative prompt as plain text, for an encoder without weights (unCLIP)."""

    def plain(text: str) -> str:
        return "".join(part for part, _ in emphasis_segments(text)).strip()

    positives = [plain(part.text) for part in spec.prompt if part.weight > 0]
    if spec.style_suffix and spec.stylize > 0 and not spec.raw:
        positives.append(plain(spec.style_suffix))
    negatives = [spec.negative_prompt, *(plain(part.text) for part in spec.prompt if part.weight < 0)]
    return ", ".join(p for p in positives if p), ", ".join(n.strip() for n in negatives if n.strip())
