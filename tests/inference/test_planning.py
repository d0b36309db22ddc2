"""Step plans: how a job's steps split between base and refiner, as the pipelines cut them."""

from __future__ import annotations

from inference.models import ModelRegistry
from inference.planning import plan_steps, refine_steps
from inference.schedulers import make_scheduler
from sojourn.actions import Render
from tests.inference.helpers import derived_spec, gradient


def test_stop_plans_follow_the_pipelines_cutoffs(registry: ModelRegistry) -> None:
    # The split is by noise level (the refiner is trained on t < 200), as diffusers cuts it; with
    # Karras sigmas more steps fall below that level, so the refiner takes 11 of 30 rather than 6.
    config = registry.checkpoint_scheduler_config(registry.base)
    karras = make_scheduler("dpmpp_2m_karras", config)
    full = plan_steps(karras, 30, 100)
    assert (full.base_end, full.refiner_end, full.base_steps, full.refiner_steps) == (0.8, None, 19, 11)
    nothing_left_to_refine = plan_steps(karras, 30, 81)
    assert not nothing_left_to_refine.refine and nothing_left_to_refine.base_end == 0.8

    euler = make_scheduler("euler", config)
    late = plan_steps(euler, 30, 90)
    assert (late.base_steps, late.refiner_end, late.refiner_steps) == (23, 0.9, 4)
    early = plan_steps(euler, 30, 50)
    assert not early.refine and early.base_end == 0.5


def test_img2img_passes_always_run_at_least_one_step() -> None:
    source = gradient(256, 256)
    assert refine_steps(derived_spec(Render.UPSCALE, source, steps=30)) == 30
    assert refine_steps(derived_spec(Render.UPSCALE, source, steps=2, strength=0.3)) == 4
    assert refine_steps(derived_spec(Render.UPSCALE, source, steps=2, strength=0.1)) == 10
