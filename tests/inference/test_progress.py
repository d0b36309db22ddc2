"""Latent previews: a small PNG from any latents, without the VAE."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from inference.progress import latent_preview_png


@pytest.mark.parametrize("shape", [(4, 96, 168), (4, 128, 128), (16, 64, 32)])
def test_preview_is_a_small_png_for_any_latents(shape: tuple[int, int, int]) -> None:
    preview = Image.open(io.BytesIO(latent_preview_png(torch.randn(shape))))
    assert max(preview.size) <= 96
    assert preview.size[0] / preview.size[1] == pytest.approx(shape[2] / shape[1], rel=0.05)
