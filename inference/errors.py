"""Ways a render ends without images; the worker turns each into a job status."""

from __future__ import annotations

from sojourn.errors import UserError


class JobCancelled(Exception):
    """The job was cancelled while it rendered; the worker stopped at the next denoising step."""

    def __init__(self) -> None:
        super().__init__("the job was cancelled while it was rendering")


class GpuOutOfMemory(UserError):
    """The accelerator (or host) ran out of memory; the worker freed what it could and keeps running."""

    def __init__(self) -> None:
        super().__init__("the GPU ran out of memory: try a smaller --ar, lower --q or fewer images at once")


class StorageWriteFailed(Exception):
    """The images could not be written to storage (a full disk, a read-only mount, a quota)."""
