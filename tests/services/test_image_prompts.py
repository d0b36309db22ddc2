"""Image prompt uploads: type, signature, size and dimensions checked before anything is decoded."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from sojourn.services.image_prompts import (
    ImagePromptError,
    check_declared,
    read_image_prompt,
    store_image_prompt,
)
from sojourn.storage import LocalStorage

MB = 1024 * 1024
LIMITS = {"max_bytes": 10 * MB, "max_side": 4096}


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size (IHDR) with almost no pixel data: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_read_and_reencoded_as_png(fmt: str) -> None:
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    prompt = read_image_prompt(encoded(image, fmt), **LIMITS)
    decoded = Image.open(io.BytesIO(prompt.png))
    assert decoded.format == "PNG" and decoded.size == (64, 48) == (prompt.width, prompt.height)
    assert decoded.mode == "RGB"


def test_metadata_is_dropped_and_exif_rotation_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90°: displayed as 20×40
    prompt = read_image_prompt(encoded(image, "JPEG", exif=exif), **LIMITS)
    assert (prompt.width, prompt.height) == (20, 40)
    assert "exif" not in Image.open(io.BytesIO(prompt.png)).info


@pytest.mark.parametrize(
    ("content_type", "size", "message"),
    [
        ("image/gif", 10, "the attached file is image/gif: attach a PNG, JPEG or WebP image"),
        (None, 10, "the attached file is of an unknown type"),
        ("image/png", 11 * MB, "the attached image is 11 MB and the limit is 10 MB"),
    ],
)
def test_the_declared_type_and_size_are_checked_before_downloading(
    content_type: str | None, size: int, message: str
) -> None:
    with pytest.raises(ImagePromptError) as refused:
        check_declared(content_type, size, max_bytes=10 * MB)
    assert refused.value.message.startswith(message)
    check_declared("image/jpeg; charset=binary", 10 * MB, max_bytes=10 * MB)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a" + b"\0" * 100, "the attached file is not a PNG, JPEG or WebP image"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "the attached image could not be read"),
        (png_header_only(4097, 10), "the attached image is 4097×10 pixels and the limit is 4096 a side"),
        (png_header_only(60_000, 60_000), "the attached image is far over 4096 pixels a side"),
    ],
)
def test_the_bytes_themselves_are_checked(data: bytes, message: str) -> None:
    with pytest.raises(ImagePromptError) as refused:
        read_image_prompt(data, **LIMITS)
    assert refused.value.message.startswith(message)


def test_too_many_bytes_are_refused_even_if_discord_said_otherwise() -> None:
    with pytest.raises(ImagePromptError, match="11 MB"):
        read_image_prompt(b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * MB), **LIMITS)


def test_stored_prompts_are_content_addressed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    prompt = read_image_prompt(encoded(Image.new("RGB", (8, 8)), "PNG"), **LIMITS)
    key = store_image_prompt(storage, prompt)
    assert key.startswith("prompts/") and key.endswith(".png")
    assert store_image_prompt(storage, prompt) == key and storage.get(key) == prompt.png
