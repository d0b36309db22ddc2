"""Where images live: a local directory, or an S3 bucket (`storage_s3`); `make_storage` picks one."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sojourn.settings import Settings

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def checked_key(key: str) -> str:
    """The key itself, if it is one of ours; a ValueError for anything else (before any file or request)."""
    # Keys are built by us, but check anyway: no '..', no absolute paths, no odd characters.
    if not _SAFE_KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe storage key: {key!r}")
    return key


class ImageStorage(Protocol):
    """Every method refuses an unsafe key with a ValueError; a backend's failures are OSErrors."""

    def put(self, key: str, data: bytes) -> str: ...

    def get(self, key: str) -> bytes:
        """The key's bytes; FileNotFoundError if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the key's file; a missing one is fine."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for the key, where the backend has one (else None)."""
        ...

    def location(self, key: str) -> str:
        """Where the key's file is, for people: a path or a URL."""
        ...


class LocalStorage:
    """Files under one root directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

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

    def location(self, key: str) -> str:
        return str(self._path(key))


def make_storage(settings: Settings) -> ImageStorage:
    """The storage the settings choose (`SOJOURN_STORAGE__BACKEND`); an S3 bucket is made if missing."""
    from sojourn.settings import StorageBackend

    if settings.storage.backend is StorageBackend.S3:
        from sojourn.storage_s3 import S3Storage  # boto3 is imported only where it is used

        storage = S3Storage.from_settings(settings.storage)
        storage.ensure_bucket()
        return storage
    return LocalStorage(settings.resolved_storage_dir)


def image_key(job_id: object, index: int) -> str:
    return f"jobs/{job_id}/image-{index}.png"


def grid_key(job_id: object) -> str:
    return f"jobs/{job_id}/grid.png"


def thumbnail_key(key: str) -> str:
    """Where an image's web thumbnail lives: beside it (`grid.png` → `grid.thumb.webp`)."""
    return f"{key.removesuffix('.png')}.thumb.webp"
