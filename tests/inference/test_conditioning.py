"""Weighted prompts → conditioning: emphasis, multi-prompts, chaos, weird, long prompts, padding."""

from __future__ import annotations

import pytest
import torch

from inference.conditioning import Embedding, JobConditioning, PromptEncoder, plain_prompts
from inference.job import RenderJob
from inference.models import ModelRegistry
from sojourn.settings import ModelPaths
from sojourn.spec import JobSpec, PromptPart
from tests.inference.helpers import make_spec

LONG = "a lighthouse on a cliff above a stormy sea, " * 4  # > 77 byte-level tokens: two chunks


def encode(registry: ModelRegistry, spec: JobSpec) -> tuple[JobConditioning, JobConditioning]:
    with torch.inference_mode():
        return RenderJob(registry, spec).conditioning()


def test_chaos_zero_gives_the_four_images_one_embedding(registry: ModelRegistry) -> None:
    calm, _ = encode(registry, make_spec(chaos=0))
    chaotic, refiner_chaotic = encode(registry, make_spec(chaos=100))

    assert calm.prompt_embeds.shape[0] == 4
    assert all(torch.equal(calm.prompt_embeds[0], row) for row in calm.prompt_embeds[1:])
    assert all(torch.equal(calm.pooled_prompt_embeds[0], row) for row in calm.pooled_prompt_embeds[1:])
    assert not torch.equal(chaotic.prompt_embeds[0], chaotic.prompt_embeds[1])
    assert not torch.equal(chaotic.pooled_prompt_embeds[0], chaotic.pooled_prompt_embeds[1])
    # the refiner sees the same jitter through its (second) encoder's half
    width_1 = registry.base.text_encoder.config.hidden_size
    assert torch.equal(refiner_chaotic.prompt_embeds, chaotic.prompt_embeds[..., width_1:])


def test_weird_shifts_all_four_images_alike(registry: ModelRegistry) -> None:
    plain, _ = encode(registry, make_spec())
    weird, _ = encode(registry, make_spec(weird=1500))
    weird_again, _ = encode(registry, make_spec(weird=1500, seed=99))

    assert all(torch.equal(weird.prompt_embeds[0], row) for row in weird.prompt_embeds[1:])
    assert not torch.equal(weird.prompt_embeds, plain.prompt_embeds)
    assert torch.equal(weird.prompt_embeds, weird_again.prompt_embeds)  # tied to the prompt, not the seed


def test_emphasis_and_multi_prompt_weights_change_the_conditioning(registry: ModelRegistry) -> None:
    plain, _ = encode(registry, make_spec("a red cat"))
    emphasised, _ = encode(registry, make_spec("a (red:1.5) cat"))
    multi, _ = encode(registry, make_spec("a::2", "b::-0.5"))
    empty_negative, _ = encode(registry, make_spec("a"))

    assert not torch.equal(plain.prompt_embeds, emphasised.prompt_embeds)
    assert torch.count_nonzero(empty_negative.negative_prompt_embeds) == 0  # SDXL base: zeros for ""
    assert torch.count_nonzero(multi.negative_prompt_embeds) > 0  # `b` pushes from the negative side


def test_long_prompts_are_chunked_not_truncated(registry: ModelRegistry) -> None:
    conditioning, _ = encode(registry, make_spec(LONG, negative_prompt="fog"))
    assert conditioning.prompt_embeds.shape[1] % 77 == 0 and conditioning.prompt_embeds.shape[1] > 77
    assert conditioning.negative_prompt_embeds.shape == conditioning.prompt_embeds.shape


def padded_as_before(encoder: PromptEncoder, embedding: Embedding, length: int) -> torch.Tensor:
    """The padding sojourn did itself before it used compel's: each encoder's empty-prompt chunk
    (compel's `empty_z`), appended to that encoder's half until the length is reached."""
    halves = (embedding.tokens[..., : encoder.width_1], embedding.tokens[..., encoder.width_1 :])
    padded = []
    for hidden, compel in zip(halves, encoder.encoders, strict=True):
        empty = compel.conditioning_provider.empty_z.to(hidden.device, hidden.dtype)
        while hidden.shape[1] < length:
            hidden = torch.cat([hidden, empty], dim=1)
        padded.append(hidden.float())
    return torch.cat(padded, dim=-1)


# In float16 (a GPU's default) compel's padding chunk is half precision and the embeddings float32.
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_compels_padding_gives_the_tensors_of_our_former_padding(tiny_models: ModelPaths, dtype: str) -> None:
    encoder = ModelRegistry(tiny_models, device="cpu", dtype=dtype).prompt_encoder
    with torch.inference_mode():
        short, long = encoder.encode("a (red:1.3) cat"), encoder.encode(LONG)
        padded_short, padded_long = encoder.pad_to_same_length([short, long])
        again_short, again_short_2 = encoder.pad_to_same_length([short, short])

    length = long.tokens.shape[1]
    assert short.tokens.shape[1] == 77 and length == 154
    assert padded_short.tokens.shape == padded_long.tokens.shape
    assert torch.equal(padded_short.tokens, padded_as_before(encoder, short, length))
    assert torch.equal(padded_long.tokens, long.tokens)  # the longest is left as it was
    assert torch.equal(padded_short.pooled, short.pooled)  # pooled embeddings have no length
    assert torch.equal(again_short.tokens, short.tokens) and torch.equal(again_short_2.tokens, short.tokens)


def test_unclip_gets_the_prompt_as_plain_text() -> None:
    spec = JobSpec(
        prompt=(PromptPart(text="a (red:1.4) cat"), PromptPart(text="dogs", weight=-0.5)),
        negative_prompt="blur",
        style_suffix="cinematic",
        seed=1,
    )
    assert plain_prompts(spec) == ("a red cat, cinematic", "blur, dogs")
    assert plain_prompts(spec.model_copy(update={"raw": True}))[0] == "a red cat"
