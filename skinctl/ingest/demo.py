"""`skinctl demo`: a small labelled image set of skinctl's own making.

Three condition classes drawn with Pillow (random skin tones and shading, then class marks:
acne dots, eczema patches, rosacea flush), split into train/valid folders, plus two exact
copies (one filed under another class: a label conflict), one near copy (re-encoded and
brightened) and one truncated JPEG. Deterministic: the same files every time, so running the
demo twice shows an idempotent ingest.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

DEMO_DATASET = "demo"
CLASSES = ("acne", "eczema", "rosacea")
PER_CLASS = {"train": 6, "valid": 2}
SIZE = (320, 240)


@dataclass(frozen=True)
class DemoSet:
    folder: Path
    classes: tuple[str, ...]
    images: int  # files written, good and bad
    exact_copies: int
    near_copies: int
    bad_files: int


def _skin(rng: random.Random):  # noqa: ANN202 - a PIL image
    from PIL import Image, ImageDraw, ImageFilter

    base = (rng.randint(150, 235), rng.randint(105, 185), rng.randint(80, 160))
    image = Image.new("RGB", SIZE, base)
    draw = ImageDraw.Draw(image)
    # large-scale shading and shadows make each picture's perceptual hash its own
    for _ in range(rng.randint(3, 6)):
        x, y = rng.randint(-80, SIZE[0]), rng.randint(-80, SIZE[1])
        w, h = rng.randint(60, 220), rng.randint(60, 200)
        shade = rng.randint(-70, 40)
        colour = tuple(max(0, min(255, c + shade)) for c in base)
        draw.ellipse((x, y, x + w, y + h), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(4, 9)))


def _draw_class(image, name: str, rng: random.Random) -> None:  # noqa: ANN001
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    if name == "acne":
        for _ in range(rng.randint(25, 45)):
            x, y, r = (
                rng.randint(10, SIZE[0] - 10),
                rng.randint(10, SIZE[1] - 10),
                rng.randint(2, 6),
            )
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randint(170, 220), 40, 50))
            if rng.random() < 0.4:
                draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=(245, 240, 220))
    elif name == "eczema":
        for _ in range(rng.randint(2, 4)):
            cx, cy = rng.randint(40, SIZE[0] - 40), rng.randint(40, SIZE[1] - 40)
            points = [
                (cx + rng.randint(-60, 60), cy + rng.randint(-45, 45))
                for _ in range(rng.randint(5, 9))
            ]
            draw.polygon(
                points, fill=(rng.randint(190, 230), rng.randint(110, 140), rng.randint(110, 140))
            )
            for _ in range(40):  # scaly texture
                x, y = cx + rng.randint(-50, 50), cy + rng.randint(-40, 40)
                draw.point((x, y), fill=(240, 225, 215))
    else:  # rosacea: a red flush over the cheeks with fine vessels
        for cx in (SIZE[0] // 4 + rng.randint(-20, 20), 3 * SIZE[0] // 4 + rng.randint(-20, 20)):
            cy = SIZE[1] // 2 + rng.randint(-30, 30)
            w, h = rng.randint(45, 80), rng.randint(35, 60)
            draw.ellipse((cx - w, cy - h, cx + w, cy + h), fill=(rng.randint(200, 235), 90, 95))
            for _ in range(6):
                x, y = cx + rng.randint(-w, w), cy + rng.randint(-h, h)
                draw.line(
                    (x, y, x + rng.randint(-25, 25), y + rng.randint(-15, 15)),
                    fill=(170, 30, 45),
                    width=1,
                )


def _jpeg(image, quality: int = 90) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def make_demo_images(folder: Path, seed: int = 20261127) -> DemoSet:
    """Write the demo set under `folder` (same bytes on every call)."""
    from PIL import ImageEnhance, ImageFilter

    rng = random.Random(seed)
    written: dict[str, bytes] = {}
    pictures = {}
    for split, count in PER_CLASS.items():
        for name in CLASSES:
            for number in range(1, count + 1):
                image = _skin(rng)
                _draw_class(image, name, rng)
                image = image.filter(ImageFilter.SMOOTH)
                key = f"{split}/{name}/{name}_{split}_{number:02d}.jpg"
                pictures[key] = image
                written[key] = _jpeg(image)
    # exact copies: one in its own class, one filed under another class (a label conflict)
    written["train/acne/acne_train_01 - Copy.jpg"] = written["train/acne/acne_train_01.jpg"]
    written["valid/rosacea/eczema_train_02.jpg"] = written["train/eczema/eczema_train_02.jpg"]
    # a near copy: re-encoded at a lower quality and a little brighter
    near = ImageEnhance.Brightness(pictures["train/rosacea/rosacea_train_03.jpg"]).enhance(1.06)
    written["train/rosacea/rosacea_train_03_edit.jpg"] = _jpeg(near, quality=70)
    # a bad file: a JPEG cut off in the middle
    whole = written["train/eczema/eczema_train_05.jpg"]
    written["train/eczema/eczema_upload_broken.jpg"] = whole[: len(whole) // 2]
    for key, data in written.items():
        _write(folder / key, data)
    return DemoSet(folder, CLASSES, len(written), exact_copies=2, near_copies=1, bad_files=1)
