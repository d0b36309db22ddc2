"""Switches a job flips on the shared modules for its duration, and always back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from torch import nn


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
