"""Images the ingest tests draw themselves, and the bad inputs the issue lists."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance


def draw(kind: str, seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A picture of class `kind` ("spots", "stripes", "rings", ...) with its own layout: a random
    low-frequency background gives each picture its own perceptual hash."""
    rng = random.Random(f"{kind}-{seed}")
    noise = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randint(3, 14)
        colour = (rng.randint(150, 255), rng.randint(0, 90), rng.randint(0, 90))
        if kind == "stripes":
            pen.line((x, 0, x + rng.randint(-30, 30), size[1]), fill=colour, width=3)
        elif kind == "rings":
            pen.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=2)
        else:
            pen.ellipse((x - r // 2, y - r // 2, x + r // 2, y + r // 2), fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" and not options else options))
    return buffer.getvalue()


def near_copy(image: Image.Image) -> bytes:
    """The same picture re-encoded a little brighter: a near duplicate."""
    return encode(ImageEnhance.Brightness(image).enhance(1.05), quality=75)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def make_bad_inputs(folder: Path) -> dict[str, str]:
    """Write every bad input of the issue into `folder`; returns {relative path: expected reason}
    (None for files that must be accepted)."""
    good = draw("spots", 999)
    jpeg = encode(good)
    expected: dict[str, str | None] = {}
    write(folder / "empty.jpg", b"")
    expected["empty.jpg"] = "empty"
    write(folder / "notes.jpg", b"this is a text file, not a photo\n")
    expected["notes.jpg"] = "not_an_image"
    write(folder / "truncated.jpg", jpeg[: len(jpeg) // 2])
    expected["truncated.jpg"] = "truncated"
    write(folder / "really_a_png.jpg", encode(draw("rings", 998), "PNG"))
    expected["really_a_png.jpg"] = None
    write(
        folder / "cmyk.jpg",
        encode(Image.new("CMYK", (64, 48), (10, 200, 30, 5)), "JPEG", quality=90),
    )
    expected["cmyk.jpg"] = "unsupported_mode"
    sixteen = Image.fromarray(np.linspace(0, 65535, 64 * 48, dtype=np.uint16).reshape(48, 64))
    write(folder / "sixteen_bit.png", encode(sixteen, "PNG"))
    expected["sixteen_bit.png"] = "unsupported_mode"
    write(folder / "bomb.png", png_header_only(100_000, 100_000))
    expected["bomb.png"] = "too_many_pixels"
    # a loop of two symbolic links
    os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
    os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
    expected["loop_a.jpg"] = "symlink_loop"
    expected["loop_b.jpg"] = "symlink_loop"
    # unreadable: a file whose read fails even for root (reading /proc/self/mem gives EIO)
    os.symlink("/proc/self/mem", folder / "unreadable.jpg")
    expected["unreadable.jpg"] = "unreadable"
    return expected
