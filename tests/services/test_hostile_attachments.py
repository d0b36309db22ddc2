"""Hostile image prompts against the validator: each refused in words, or read with bounded memory.

The files are crafted here, small (a decompression bomb is 65 bytes), and shared with the Discord
tests (tests/bot/test_hostile_attachments.py) and the memory benchmark (bench/hostile_attachments.py).
What each one gets, and why:

- a decompression bomb (a PNG, a JPEG or a WebP whose header declares 50,000 px a side): refused
  from the header, nothing decoded;
- a truncated PNG or JPEG: refused as incomplete, with how to fix it;
- a JPEG with a 60 KB EXIF block: accepted, and the block stripped (it is within the size limit,
  and the stored image is a fresh PNG of the pixels);
- an animated WebP: accepted, its first frame used, as Midjourney does with an animated image
  prompt (people attach what Discord shows them; refusing it would only make them convert it);
  /imagine says so in its confirmation;
- an SVG and an HTML page named `.png` and declared `image/png`: refused, naming what they are;
- a PNG declared `image/jpeg` and a JPEG declared `image/png`: accepted, decoded as what the bytes
  are (a wrong extension is common and harmless: the pixels are re-encoded either way);
- an empty file: refused before it is downloaded (Discord says its size), and after.
"""

from __future__ import annotations

import io
import random
import resource
import struct
import tracemalloc
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sojourn.services.image_prompts import ImagePromptError, check_declared, read_image_prompt

MB = 1024 * 1024
LIMITS = {"max_bytes": 10 * MB, "max_side": 4096}
BOMB_SIDE = 50_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid PNG header declaring side × side RGB pixels, with one empty compressed stream."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Pixels that do not compress, so a cut through the file is a cut through the picture."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def jpeg_bomb(side: int = BOMB_SIDE) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to declare side × side pixels."""
    data = bytearray(encoded(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def webp_bomb(side: int = 16_383) -> bytes:
    """An animated WebP whose canvas (VP8X) is rewritten to side × side, WebP's largest."""
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = bytearray(encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100))
    canvas = data.index(b"VP8X") + 12
    data[canvas : canvas + 6] = (side - 1).to_bytes(3, "little") * 2
    return bytes(data)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def jpeg_with_huge_exif(app1_bytes: int = 60_000) -> bytes:
    """A JPEG with a 60 KB APP1 (EXIF) segment: a valid TIFF header, an empty IFD, then padding."""
    exif = b"Exif\x00\x00" + b"II*\x00\x08\x00\x00\x00" + b"\x00\x00\x00\x00\x00\x00"
    exif += b"\xa5" * (app1_bytes - len(exif))
    segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    jpeg = encoded(Image.new("RGB", (64, 48), (30, 160, 60)), "JPEG", quality=95)
    return jpeg[:2] + segment + jpeg[2:]


ANIMATION_COLOURS = ((220, 20, 20), (20, 220, 20), (20, 20, 220))


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (48, 32), colour) for colour in ANIMATION_COLOURS]
    return encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80, lossless=True)


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4096" '
    b'height="4096"><rect width="100%" height="100%" fill="red"/><script>alert(1)</script></svg>\n'
)
HTML = b"<!DOCTYPE html>\n<html><head><title>cat.png</title></head><body><img src=cat.png></body></html>\n"


@dataclass(frozen=True)
class HostileFile:
    """An attachment as Discord describes it (name, declared type) and its bytes."""

    case: str
    filename: str
    content_type: str
    data: bytes
    refusal: str | None  # how the message starts; None: accepted


def hostile_files() -> list[HostileFile]:
    png = encoded(noise(96, 64), "PNG")
    jpeg = encoded(noise(96, 64), "JPEG", quality=90)
    incomplete = (
        "the attached image is incomplete: the file stops before the picture ends (a download or "
        "upload cut short?): save or export it again and attach the new file"
    )
    far_over = "the attached image is far over 4096 pixels a side"
    return [
        HostileFile(
            "PNG bomb, 50,000 × 50,000 px declared",
            "bomb.png",
            "image/png",
            png_bomb(),
            f"{far_over} (its header says 50000×50000 pixels): attach a smaller one",
        ),
        HostileFile(
            "JPEG bomb, 50,000 × 50,000 px declared",
            "bomb.jpg",
            "image/jpeg",
            jpeg_bomb(),
            f"{far_over} (its header says 50000×50000 pixels): attach a smaller one",
        ),
        HostileFile(
            "WebP bomb, 16,383 × 16,383 px canvas",
            "bomb.webp",
            "image/webp",
            webp_bomb(),
            f"{far_over}: attach a smaller one",
        ),
        HostileFile("truncated PNG", "cut.png", "image/png", truncated(png), incomplete),
        HostileFile("truncated JPEG", "cut.jpg", "image/jpeg", truncated(jpeg), incomplete),
        HostileFile("JPEG with a 60 KB EXIF block", "exif.jpg", "image/jpeg", jpeg_with_huge_exif(), None),
        HostileFile("animated WebP", "loop.webp", "image/webp", animated_webp(), None),
        HostileFile(
            "SVG named .png",
            "drawing.png",
            "image/png",
            SVG,
            "the attached file is not a PNG, JPEG or WebP image but an SVG drawing: "
            "export it as a PNG and attach that",
        ),
        HostileFile(
            "HTML named .png",
            "cat.png",
            "image/png",
            HTML,
            "the attached file is not a PNG, JPEG or WebP image but a web page or other text (HTML, "
            "XML): save the picture itself (right-click it, Save image as…) and attach that",
        ),
        HostileFile("PNG bytes declared image/jpeg", "photo.jpg", "image/jpeg", png, None),
        HostileFile("JPEG bytes declared image/png", "photo.png", "image/png", jpeg, None),
        HostileFile(
            "zero-byte file",
            "empty.png",
            "image/png",
            b"",
            "the attached file is empty (0 bytes): attach the image again",
        ),
    ]


HOSTILE_FILES = hostile_files()
_PILLOW_WORDS = ("PIL", "Traceback", "Error", "cannot identify", "truncated", "bytes not processed", "errno")


def assert_no_internals(message: str) -> None:
    assert not any(word in message for word in _PILLOW_WORDS), message


def validate(file: HostileFile) -> object:
    """What /imagine does with an attachment: the declared type and size, then the bytes."""
    check_declared(file.content_type, len(file.data), max_bytes=LIMITS["max_bytes"])
    return read_image_prompt(file.data, **LIMITS)


@pytest.mark.parametrize("file", HOSTILE_FILES, ids=lambda file: file.case)
def test_each_hostile_file_is_refused_in_words_or_read(file: HostileFile) -> None:
    if file.refusal is None:
        prompt = validate(file)
        assert isinstance(prompt.png, bytes) and prompt.png.startswith(b"\x89PNG")  # type: ignore[attr-defined]
        return
    with pytest.raises(ImagePromptError) as refused:
        validate(file)
    assert refused.value.message == file.refusal
    assert_no_internals(refused.value.message)


def test_the_bombs_stay_tiny_and_are_never_decoded() -> None:
    bombs = [file for file in HOSTILE_FILES if "bomb" in file.case]
    assert all(len(file.data) < 1000 for file in bombs)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        for _ in range(20):
            for file in bombs:
                with pytest.raises(ImagePromptError):
                    read_image_prompt(file.data, **LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # Decoding 50,000² RGB pixels once would need 7 GB; reading headers needs almost nothing.
    assert peak < 2 * MB and grown_kib < 64 * 1024


def test_a_huge_exif_block_is_accepted_and_stripped() -> None:
    data = jpeg_with_huge_exif()
    assert len(data) > 60_000
    prompt = read_image_prompt(data, **LIMITS)
    stored = Image.open(io.BytesIO(prompt.png))
    assert (prompt.width, prompt.height) == stored.size == (64, 48)
    assert "exif" not in stored.info and len(prompt.png) < 10_000


def test_an_animated_webp_becomes_its_first_frame() -> None:
    prompt = read_image_prompt(animated_webp(), **LIMITS)
    stored = Image.open(io.BytesIO(prompt.png))
    assert prompt.animated and not getattr(stored, "is_animated", False)
    assert stored.getpixel((10, 10)) == ANIMATION_COLOURS[0]


@pytest.mark.parametrize(
    ("declared", "fmt"), [("image/jpeg", "PNG"), ("image/png", "JPEG"), ("image/png", "WEBP")]
)
def test_the_bytes_decide_the_format_not_the_declared_type(declared: str, fmt: str) -> None:
    picture = Image.new("RGB", (40, 30), (200, 100, 0))
    check_declared(declared, 1234, max_bytes=LIMITS["max_bytes"])
    prompt = read_image_prompt(encoded(picture, fmt, quality=95), **LIMITS)
    stored = Image.open(io.BytesIO(prompt.png))
    assert stored.format == "PNG" and stored.size == (40, 30) and not prompt.animated
    pixel = stored.getpixel((20, 15))
    assert isinstance(pixel, tuple)
    assert max(abs(a - b) for a, b in zip(pixel, (200, 100, 0), strict=True)) <= 3


def test_an_empty_file_is_refused_before_it_is_downloaded() -> None:
    with pytest.raises(ImagePromptError, match=r"^the attached file is empty \(0 bytes\)"):
        check_declared("image/png", 0, max_bytes=LIMITS["max_bytes"])


SEEDS = {
    "PNG": encoded(noise(48, 32, seed=1), "PNG"),
    "JPEG": encoded(noise(48, 32, seed=2), "JPEG", quality=85),
    "WEBP": encoded(noise(48, 32, seed=3), "WEBP"),
    "animated WEBP": animated_webp(),
    "EXIF JPEG": jpeg_with_huge_exif(2_000),
}
_MESSAGE_STARTS = (
    "the attached image could not be read (damaged or not really a PNG, JPEG or WebP): attach another one",
    "the attached image is incomplete:",
    "the attached file is not a PNG, JPEG or WebP image",
    "the attached image is far over 4096 pixels a side",
    "the attached image has no pixels",
    "the attached file is empty",
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid small image with bytes flipped, cut out, or spliced in."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if edit == "flip":
            data[position] = draw(st.integers(0, 255))
        elif edit == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        elif edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[max(position, 1) :]
        if not data:
            break
    return bytes(data)


@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(damaged())
def test_damaged_images_are_read_or_refused_in_words(data: bytes) -> None:
    try:
        prompt = read_image_prompt(data, **LIMITS)
    except ImagePromptError as error:
        assert error.message.startswith(_MESSAGE_STARTS), error.message
        assert_no_internals(error.message)
    else:
        assert 1 <= prompt.width <= 4096 and 1 <= prompt.height <= 4096
