"""Running out of memory as an error the user can act on, and the worker survives."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from inference.errors import GpuOutOfMemory


@contextmanager
def out_of_memory_as_error(device: torch.device) -> Iterator[None]:
    """Turn an out-of-memory error into `GpuOutOfMemory` after freeing what the failed job held."""
    out_of_memory = False
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError):
        out_of_memory = True  # leave the except block first, so its traceback frames are released
    except RuntimeError as error:
        # Host memory (CPU or MPS) failures surface as allocator RuntimeErrors, not OutOfMemoryError.
        if not is_allocation_failure(error):
            raise
        out_of_memory = True
    if out_of_memory:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise GpuOutOfMemory()


def is_allocation_failure(error: RuntimeError) -> bool:
    message = str(error)
    return "can't allocate memory" in message or "out of memory" in message.lower()
