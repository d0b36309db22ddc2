"""The render tests' models: the session's tiny models, in one registry per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from inference.models import ModelRegistry
from sojourn.settings import ModelPaths


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread() -> Iterator[None]:
    # The tiny models run thousands of very small ops; with OpenMP threads competing for the cores
    # with anything else (another test process) they spin and run 5× slower, while alone one
    # thread is only ~1.5× slower than two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registry(tiny_models: ModelPaths) -> ModelRegistry:
    return ModelRegistry(tiny_models, device="cpu", dtype="auto")
