"""Image geometry: unCLIP's working size, zoom out's canvas, mask and pasted centre."""

from __future__ import annotations

import numpy as np
import pytest

from inference.geometry import ZOOM_OVERLAP, unclip_size, zoom_out_canvas
from tests.inference.helpers import gradient


def test_unclip_renders_near_its_training_size_in_the_jobs_aspect() -> None:
    assert unclip_size(1024, 1024) == (768, 768)
    assert unclip_size(1344, 768) == (960, 576)
    assert unclip_size(256, 384) == (256, 384)  # never enlarged


@pytest.mark.parametrize(("zoom", "size"), [(1.5, (1344, 768)), (2.0, (1024, 1024)), (2.0, (768, 1344))])
def test_zoom_out_canvas_and_mask_geometry(zoom: float, size: tuple[int, int]) -> None:
    width, height = size
    source = gradient(width, height)
    canvas, mask, (left, top, right, bottom) = zoom_out_canvas(source, width, height, zoom)

    assert canvas.size == mask.size == (width, height) and mask.mode == "L"
    assert (right - left, bottom - top) == (round(width / zoom), round(height / zoom))
    assert (left + right) / 2 == pytest.approx(width / 2, abs=1)
    assert (top + bottom) / 2 == pytest.approx(height / 2, abs=1)
    m = np.asarray(mask)
    inset = ZOOM_OVERLAP
    assert (m[top + inset : bottom - inset, left + inset : right - inset] == 0).all()
    assert (m[:top] == 255).all() and (m[:, :left] == 255).all() and (m[bottom:] == 255).all()
    # The mask reaches a few pixels into the pasted source, so the seam is painted over.
    assert (m[top : top + ZOOM_OVERLAP, left:right] == 255).all()
    # The border is the source's edge, extended: no black frame for the painter to keep.
    assert np.array_equal(np.asarray(canvas)[0, left:right], np.asarray(canvas)[top, left:right])
