"""Where images live: a local directory (the only backend so far; another implements `ImageStorage`)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class ImageStorage(Protocol):
    def put(self, key: str, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the key's file; a missing one is fine."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for the key, where the backend has one (else None)."""
        ...


class LocalStorage:
    """Files under one root directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        # Keys are built by us, but check anyway: no '..', no absolute paths, no odd characters.
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"unsafe storage key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def image_key(job_id: object, index: int) -> str:
    return f"jobs/{job_id}/image-{index}.png"


def grid_key(job_id: object) -> str:
    return f"jobs/{job_id}/grid.png"


def thumbnail_key(key: str) -> str:
    """Where an image's web thumbnail lives: beside it (`grid.png` → `grid.thumb.webp`)."""
    return f"{key.removesuffix('.png')}.thumb.webp"
