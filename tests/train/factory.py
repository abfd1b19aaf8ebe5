"""Test data for training: images the tests draw themselves, stored and registered the way
ingest stores them (content keys in the storage backend, rows in the plan's tables)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImageDuplicate, SubjectMetadata, TrainingImage
from skinctl.ingest.imageproc import PHASH_METHOD, analyse_bytes, hamming
from skinctl.storage import content_key
from skinctl.storage.local import LocalStorage

# Each class is a shape in a colour on a noisy background: learnable, but not constant.
CLASS_STYLE = {
    "acne": ((200, 40, 40), "ellipse"),
    "eczema": ((40, 170, 60), "rectangle"),
    "rosacea": ((50, 70, 210), "triangle"),
}


def draw_image(label: str, rng: np.random.Generator, size: int = 48) -> bytes:
    """A JPEG of the class's shape and colour at a random place and size over noise."""
    background = rng.integers(90, 170, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    colour, shape = CLASS_STYLE[label]
    colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)
    side = int(rng.integers(size // 2, size - 4))
    x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    box = (x0, y0, x0 + side - 1, y0 + side - 1)
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "rectangle":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(x0, y0 + side - 1), (x0 + side - 1, y0 + side - 1), (x0 + side // 2, y0)], fill=colour
        )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


@dataclass
class Stored:
    image_id: int
    data: bytes
    labels: list[str]


def add_image(
    session: Session,
    storage: LocalStorage,
    data: bytes,
    *,
    labels: list[str],
    dataset: str = "generated",
    task: str = "condition",
    severity: str | None = None,
    group_key: str | None = None,
    subject_id: str | None = None,
    fitzpatrick: int | None = None,
    skin_type: str | None = None,
    age_range: str | None = None,
    split: str | None = None,
    status: str = "pending",
    local_path: str | None = None,
) -> Stored:
    """Store the bytes under their content key and insert the rows ingest would."""
    facts = analyse_bytes(data)
    key = content_key(facts.sha256, facts.ext)
    storage.put(key, data)
    image = TrainingImage(
        image_url=storage.url_for(key),
        image_hash=facts.sha256,
        dataset_source=dataset,
        local_path=local_path,
        width=facts.width,
        height=facts.height,
        format=facts.format,
        byte_size=facts.byte_size,
        phash=facts.phash,
        phash_method=PHASH_METHOD,
        quality_flags=facts.quality_flags,
        split=split,
        group_key=group_key,
    )
    session.add(image)
    session.flush()
    for label in labels:
        session.add(
            ConditionLabel(
                image_id=image.id,
                condition_type=label,
                task=task,
                severity_level=severity,
                source="dataset",
                status=status,
            )
        )
    if any(v is not None for v in (subject_id, fitzpatrick, skin_type, age_range)):
        session.add(
            SubjectMetadata(
                image_id=image.id,
                subject_id=subject_id,
                fitzpatrick_scale=fitzpatrick,
                skin_type=skin_type,
                age_range=age_range,
            )
        )
    return Stored(image.id, data, labels)


def add_near_duplicates(session: Session, max_distance: int = 6) -> int:
    """ImageDuplicate rows for every pair of images whose pHash is within max_distance
    (what the dedup step records), so linked images can be tested."""
    rows = session.query(TrainingImage.id, TrainingImage.phash).order_by(TrainingImage.id).all()
    count = 0
    for i, (a, ha) in enumerate(rows):
        for b, hb in rows[i + 1 :]:
            if ha is not None and hb is not None and (d := hamming(ha, hb)) <= max_distance:
                session.add(ImageDuplicate(image_id_a=a, image_id_b=b, distance=d, method="phash"))
                count += 1
    return count


def generated_set(
    session: Session,
    storage: LocalStorage,
    per_class: int = 40,
    seed: int = 0,
    size: int = 48,
    fitzpatrick: bool = True,
) -> list[Stored]:
    """per_class images of each CLASS_STYLE class, with subject metadata on each."""
    rng = np.random.default_rng(seed)
    stored = []
    for n in range(per_class):
        for j, label in enumerate(CLASS_STYLE):
            stored.append(
                add_image(
                    session,
                    storage,
                    draw_image(label, rng, size),
                    labels=[label],
                    fitzpatrick=(n % 6) + 1 if fitzpatrick else None,
                    skin_type=("oily", "dry")[n % 2] if fitzpatrick else None,
                    age_range=("18-29", "30-44", "45+")[(n + j) % 3] if fitzpatrick else None,
                )
            )
    return stored
