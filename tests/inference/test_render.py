"""The one dispatch: every action that makes a job has its worker function, and nothing else does;
inputs are checked first; cancel and out-of-memory end every kind of job the same way."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from inference.errors import GpuOutOfMemory, JobCancelled
from inference.job import Rendered, RenderJob
from inference.models import ModelRegistry
from inference.render import RENDERERS, check_job_inputs, render_job_images
from sojourn.actions import ACTIONS, Render
from tests.inference.helpers import cancel_after, derived_spec, gradient


def test_every_action_that_makes_a_rendered_job_has_a_worker_function() -> None:
    for action in ACTIONS:
        if action.makes_job and action.render is not None:
            assert action.render in RENDERERS, f"{action.code} ({action.name}): no worker function"


def test_every_render_has_one_worker_function_and_there_are_no_others() -> None:
    assert set(RENDERERS) == set(Render)
    asked_for = {action.render for action in ACTIONS if action.makes_job and action.render is not None}
    assert set(RENDERERS) == asked_for, "a worker function that no action asks for"


def test_a_derived_job_renders_through_the_function_its_action_names(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Render | None, tuple[int, int]]] = []

    def fake(job: RenderJob, source: Image.Image) -> Rendered:
        calls.append((job.spec.action, source.size))
        return [source], job.reporter(1)

    for action in Render:
        monkeypatch.setitem(RENDERERS, action, fake)
    registry = SimpleNamespace(device=torch.device("cpu"))  # the fake renders without models
    source = gradient(64, 32)
    for action in Render:
        spec = derived_spec(action, source)
        assert render_job_images(registry, spec, source_image=source) == [source]  # type: ignore[arg-type]
    assert calls == [(action, (64, 32)) for action in Render]


@pytest.mark.parametrize("action", list(Render))
def test_cancel_stops_at_the_next_step(registry: ModelRegistry, action: Render) -> None:
    source = gradient(256, 256)
    spec = derived_spec(action, source, steps=12)
    with pytest.raises(JobCancelled):
        # Before anything runs:
        render_job_images(registry, spec, source_image=source, is_cancelled=cancel_after(0))
    progress: list[int] = []
    with pytest.raises(JobCancelled):
        render_job_images(
            registry,
            spec,
            source_image=source,
            on_progress=lambda p, _: progress.append(p),
            is_cancelled=cancel_after(2),
        )
    assert len(progress) == 2  # checked once before starting, then after each step
    assert len(render_job_images(registry, spec, source_image=source)) == spec.images  # still works


@pytest.mark.parametrize("action", list(Render))
def test_out_of_memory_becomes_an_actionable_error(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, action: Render
) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(registry.prompt_encoder, "encode", exhausted)
    source = gradient(256, 256)
    with pytest.raises(GpuOutOfMemory, match="ran out of memory"):
        render_job_images(registry, derived_spec(action, source), source_image=source)


def test_inputs_are_checked_before_any_model_work() -> None:
    source = gradient(256, 256)
    upscale = derived_spec(Render.UPSCALE, source)
    with pytest.raises(ValueError, match=r"needs spec\.source"):
        check_job_inputs(upscale.model_copy(update={"source": None}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="needs the source image"):
        check_job_inputs(upscale, init_image=None, source_image=None)
    with pytest.raises(ValueError, match="one image, not 4"):
        check_job_inputs(upscale.model_copy(update={"images": 4}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="strength above 0"):
        check_job_inputs(upscale.model_copy(update={"strength": 0.0}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="zoom above 1"):
        zoom = derived_spec(Render.ZOOM_OUT, source, zoom=1.0)
        check_job_inputs(zoom, init_image=None, source_image=source)
    with pytest.raises(ValueError, match="multiples of 8"):
        check_job_inputs(upscale.model_copy(update={"width": 515}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="source image was given for a text-to-image job"):
        check_job_inputs(upscale.model_copy(update={"action": None}), init_image=None, source_image=source)
    with pytest.raises(ValueError, match="no seed yet"):
        check_job_inputs(upscale.model_copy(update={"seed": None}), init_image=None, source_image=source)
