"""A worker held mid-job without a race: an image prompt that is a named pipe in storage."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage

from db.models import Job

HOLD_TIMEOUT = 120.0  # a bound that turns a hang into a failure; a release takes milliseconds


class HeldImagePrompt:
    """An image prompt the worker cannot read until the test lets it: a named pipe in storage.

    The runner reads a job's image prompt right after claiming it, so a job whose image prompt is
    this pipe is RUNNING, and stays so, short of its first denoising step, until `release` writes
    a picture: mid-render for as long as a test needs, without a race. Every attempt at the job
    (after a kill, a takeover) blocks on the same pipe until then.
    """

    def __init__(self, storage_dir: Path, diagnostics: Callable[[], str] = lambda: "") -> None:
        self.key = f"prompts/held-{uuid.uuid4().hex}.png"
        self.path = storage_dir / self.key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._diagnostics = diagnostics
        os.mkfifo(self.path)

    async def attach(self, sessions, job: Job) -> None:  # type: ignore[no-untyped-def]
        """Make this pipe `job`'s image prompt (as the bot does with a stored upload)."""
        async with sessions.begin() as session:
            row = await session.get(Job, job.id)
            row.spec = {**row.spec, "image_key": self.key, "image_weight": 1.0}  # type: ignore[union-attr]

    async def release(self, timeout: float = HOLD_TIMEOUT) -> None:  # noqa: ASYNC109 (another process)
        """Hand the picture to the worker process reading the pipe (waiting for one to open it)."""
        buffer = io.BytesIO()
        PILImage.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="PNG")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # fails while nobody reads
            except OSError as error:
                if error.errno != errno.ENXIO:
                    raise
                if time.monotonic() > deadline:
                    what = f"no worker process read the held image prompt in {timeout:.0f} s"
                    pytest.fail(f"{what}\n{self._diagnostics()}")
                await asyncio.sleep(0.05)
                continue
            try:
                assert os.write(fd, buffer.getvalue()) == len(buffer.getvalue())  # fits the pipe's buffer
            finally:
                os.close(fd)
            self.path.unlink()
            return
