"""Image prompts: an uploaded picture checked (type, size, dimensions) and stored before any job exists.

Uploads are hostile until proven otherwise: the declared type and size are checked before the
bytes are fetched, then the bytes' own signature, then the header's dimensions before any pixel
is decoded (so a small file that would decode to gigapixels never does). What is stored is a
fresh PNG of the decoded pixels, which drops metadata (however large an EXIF block) and anything
appended to the file. The bytes decide the format, not the declared type or the file's name: a
PNG saved as `.jpg` is common and harmless, since it is decoded as what it is and re-encoded. An
animation (animated WebP, APNG) is used by its first frame, as a still image prompt must be.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

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
    animated: bool = False  # the upload was an animation: `png` is its first frame

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
    if size == 0:
        raise _empty_file()
    if size > max_bytes:
        raise ImagePromptError(
            f"the attached image is {_megabytes(size)} and the limit is {_megabytes(max_bytes)}: "
            "attach a smaller one"
        )


def _empty_file() -> ImagePromptError:
    return ImagePromptError("the attached file is empty (0 bytes): attach the image again")


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _not_an_image(data: bytes) -> ImagePromptError:
    """Name what the bytes look like when that helps (a drawing or a page saved as `.png`)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head.startswith(b"<"):
        return ImagePromptError(f"the attached file is not a {_SHOWN_TYPES} image: attach one of those")
    if b"<svg" in head and b"<html" not in head:
        return ImagePromptError(
            f"the attached file is not a {_SHOWN_TYPES} image but an SVG drawing: "
            "export it as a PNG and attach that"
        )
    return ImagePromptError(
        f"the attached file is not a {_SHOWN_TYPES} image but a web page or other text (HTML, XML): "
        "save the picture itself (right-click it, Save image as…) and attach that"
    )


def _declared_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """The size the header claims, read by the format's own opener without Pillow's pixel limit.

    Only for the message about a file Pillow refused to open as a decompression bomb: this reads
    the header and decodes nothing.
    """
    opener = Image.OPEN[kind][0]
    try:
        with opener(io.BytesIO(data), "") as image:
            return image.size
    except Exception:  # hostile bytes: any failure only means there is no size to show
        return None


def _cut_short(data: bytes, kind: str) -> bool:
    """Whether the file ends before its format's end marker (a download or upload cut short)."""
    if kind == "PNG":
        return b"IEND" not in data[-64:]
    if kind == "JPEG":
        return not data.rstrip(b"\0").endswith(b"\xff\xd9")
    return int.from_bytes(data[4:8], "little") + 8 > len(data)  # RIFF's own length field


def read_image_prompt(data: bytes, *, max_bytes: int, max_side: int) -> ImagePrompt:
    """Validate the downloaded bytes and re-encode them as an RGB PNG; raises `ImagePromptError`."""
    if len(data) > max_bytes:
        raise ImagePromptError(
            f"the attached image is {_megabytes(len(data))} and the limit is {_megabytes(max_bytes)}: "
            "attach a smaller one"
        )
    if not data:
        raise _empty_file()
    kind = _sniff(data)
    if kind is None:
        raise _not_an_image(data)
    header_read = False
    try:
        with warnings.catch_warnings():
            # Past Pillow's pixel limit is a decompression bomb: refuse it rather than warn.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                header_read = True
                width, height = image.size  # from the header: nothing decoded yet
                if width > max_side or height > max_side:
                    raise ImagePromptError(
                        f"the attached image is {width}×{height} pixels and the limit is {max_side} "
                        "a side: attach a smaller one"
                    )
                if width < 1 or height < 1:
                    raise ImagePromptError("the attached image has no pixels: attach another one")
                animated = bool(getattr(image, "is_animated", False))
                image.seek(0)  # the first frame of an animation
                pixels = ImageOps.exif_transpose(image).convert("RGB")
    except ImagePromptError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses to even open it: far past any limit of ours. Say what the header claims.
        size = _declared_size(data, kind)
        claimed = f" (its header says {size[0]}×{size[1]} pixels)" if size else ""
        raise ImagePromptError(
            f"the attached image is far over {max_side} pixels a side{claimed}: attach a smaller one"
        ) from None
    except Exception:
        # Pillow's decoders fail on hostile bytes with many types (OSError, SyntaxError, EOFError,
        # struct.error…). Whatever the cause, the user can only send another file; the text is ours.
        if header_read and _cut_short(data, kind):
            raise ImagePromptError(
                "the attached image is incomplete: the file stops before the picture ends (a download "
                "or upload cut short?): save or export it again and attach the new file"
            ) from None
        raise ImagePromptError(
            f"the attached image could not be read (damaged or not really a {_SHOWN_TYPES}): "
            "attach another one"
        ) from None
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG", compress_level=3)
    return ImagePrompt(png=buffer.getvalue(), width=pixels.width, height=pixels.height, animated=animated)


def store_image_prompt(storage: ImageStorage, prompt: ImagePrompt) -> str:
    return storage.put(prompt.storage_key, prompt.png)
