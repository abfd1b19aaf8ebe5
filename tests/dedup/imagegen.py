"""Drawn test images and augmented copies of them (rotated, cropped, mirrored, black-padded),
like the Roboflow exports near-duplicate detection must handle."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps


def drawn_image(seed: int, size: tuple[int, int] = (480, 360), shapes: int = 40) -> Image.Image:
    """A random scene: smooth colour background, shapes and strokes with plenty of corners
    (fewer `shapes`: a smoother picture, like a face, with fewer)."""
    rng = np.random.default_rng(seed)
    width, height = size
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        kind = rng.integers(0, 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        x1, y1 = x0 + int(rng.integers(10, 120)), y0 + int(rng.integers(10, 90))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0))
        else:
            points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(4)]
            draw.line(points, fill=colour, width=int(rng.integers(2, 6)))
    return image.filter(ImageFilter.SMOOTH)


def augmented(
    image: Image.Image,
    seed: int,
    *,
    mirror: bool = False,
    angle: float = 7.0,
    crop: float = 0.1,
    brightness: float = 1.0,
) -> Image.Image:
    """A Roboflow-like copy: crop a margin, rotate inside black padding, mirror, rescale."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    left, top = int(width * crop * rng.random()), int(height * crop * rng.random())
    copy = image.crop((left, top, left + int(width * (1 - crop)), top + int(height * (1 - crop))))
    if mirror:
        copy = ImageOps.mirror(copy)
    copy = copy.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    scale = max(width, height) / max(copy.size)  # uniform: a copy is not stretched
    copy = copy.resize(
        (round(copy.width * scale), round(copy.height * scale)), Image.Resampling.BICUBIC
    )
    if brightness != 1.0:
        copy = Image.eval(copy, lambda v: min(255, int(v * brightness)))
    return copy


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def with_banner(image: Image.Image, height_fraction: float = 0.1, seed: int = 99) -> Image.Image:
    """The image under a stock-photo style banner along the bottom: a dark strip with a
    repeated wordmark and a pattern of marks, identical for every image given the same seed."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    band = max(12, int(height * height_fraction))
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    top = height - band
    draw.rectangle((0, top, width, height), fill=(30, 30, 30))
    for x in range(4, width, 70):
        draw.text((x, top + band // 4), "stockphoto.com", fill=(235, 235, 235))
    for _ in range(60):  # small high-contrast marks: corners ORB likes
        x, y = int(rng.integers(0, width - 6)), int(rng.integers(top + 1, height - 6))
        draw.rectangle((x, y, x + 4, y + 3), fill=(255, 255, 255))
    return copy


def with_logo(
    image: Image.Image,
    area_fraction: float = 0.2,
    position: tuple[float, float] = (0.5, 0.5),
    seed: int = 77,
) -> Image.Image:
    """The image with a watermark block pasted over it: a compact, textured logo (a framed
    panel with a wordmark, rings and marks) covering `area_fraction` of the picture, its centre
    at `position` (fractions of the width and height), identical for every image of one seed
    and size. Not a band: the block is about as tall as it is wide."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    side_x = int(width * area_fraction**0.5)
    side_y = int(height * area_fraction**0.5)
    logo = Image.new("RGB", (side_x, side_y), (40, 60, 110))
    draw = ImageDraw.Draw(logo)
    draw.rectangle((2, 2, side_x - 3, side_y - 3), outline=(240, 240, 240), width=3)
    for k in range(6):
        r = int(min(side_x, side_y) * (0.08 + 0.06 * k))
        cx, cy = side_x // 2, side_y // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(220, 200, 80), width=2)
    for y in range(8, side_y - 12, 22):
        draw.text((8 + (y // 22 % 3) * 9, y), "DermAtlas", fill=(250, 250, 250))
    for _ in range(50):
        x, y = int(rng.integers(4, side_x - 8)), int(rng.integers(4, side_y - 8))
        draw.rectangle((x, y, x + 3, y + 4), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    copy = image.copy()
    copy.paste(
        logo, (int(width * position[0] - side_x / 2), int(height * position[1] - side_y / 2))
    )
    return copy
