"""Image prompts: an uploaded picture checked (type, size, dimensions) and stored before any job exists.

Uploads are hostile until proven otherwise: the declared type and size are checked before the
bytes are fetched, then the bytes' own signature, then the header's dimensions before any pixel
is decoded (so a small file that would decode to gigapixels never does). What is stored is a
fresh PNG of the decoded pixels, which drops metadata and anything appended to the file.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from sojourn.errors import UserError
from sojourn.storage import ImageStorage

ALLOWED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}
_SHOWN_TYPES = "PNG, JPEG or WebP"


class ImagePromptError(UserError):
    pass


@dataclass(frozen=True)
class ImagePrompt:
    png: bytes
    width: int
    height: int

    @property
    def storage_key(self) -> str:
        # Content-addressed: the same picture uploaded twice is stored once.
        return f"prompts/{hashlib.sha256(self.png).hexdigest()[:40]}.png"


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MB".replace(".00 MB", " MB")


def check_declared(content_type: str | None, size: int, *, max_bytes: int) -> None:
    """What Discord says about the attachment, checked before downloading it."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in ALLOWED_TYPES:
        raise ImagePromptError(
            f"the attached file is {declared or 'of an unknown type'}: attach a {_SHOWN_TYPES} image"
        )
    if size > max_bytes:
        raise ImagePromptError(
            f"the attached image is {_megabytes(size)} and the limit is {_megabytes(max_bytes)}: "
            "attach a smaller one"
        )


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def read_image_prompt(data: bytes, *, max_bytes: int, max_side: int) -> ImagePrompt:
    """Validate the downloaded bytes and re-encode them as an RGB PNG; raises `ImagePromptError`."""
    if len(data) > max_bytes:
        raise ImagePromptError(
            f"the attached image is {_megabytes(len(data))} and the limit is {_megabytes(max_bytes)}: "
            "attach a smaller one"
        )
    kind = _sniff(data)
    if kind is None:
        raise ImagePromptError(f"the attached file is not a {_SHOWN_TYPES} image: attach one of those")
    try:
        with warnings.catch_warnings():
            # Past Pillow's pixel limit is a decompression bomb: refuse it rather than warn.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width > max_side or height > max_side:
                    raise ImagePromptError(
                        f"the attached image is {width}×{height} pixels and the limit is {max_side} "
                        "a side: attach a smaller one"
                    )
                if width < 1 or height < 1:
                    raise ImagePromptError("the attached image has no pixels: attach another one")
                image.seek(0)  # the first frame of an animation
                pixels = ImageOps.exif_transpose(image).convert("RGB")
    except ImagePromptError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses to even open it: far past any limit of ours.
        raise ImagePromptError(
            f"the attached image is far over {max_side} pixels a side: attach a smaller one"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImagePromptError(
            f"the attached image could not be read (damaged or not really a {_SHOWN_TYPES}): "
            "attach another one"
        ) from None
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", compress_level=3)
    return ImagePrompt(png=buffer.getvalue(), width=pixels.width, height=pixels.height)


def store_image_prompt(storage: ImageStorage, prompt: ImagePrompt) -> str:
    return storage.put(prompt.storage_key, prompt.png)
