"""Images and labels written straight through the models (the ingest pipeline is built
elsewhere): small real image files in a LocalStorage, label rows as a dataset would leave them."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImageDuplicate, TrainingImage
from skinctl.storage import content_key
from skinctl.storage.local import LocalStorage

COLOURS = [
    (200, 60, 60),
    (60, 160, 60),
    (60, 60, 200),
    (220, 180, 40),
    (140, 60, 160),
    (40, 180, 180),
]


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (24, 16)) -> bytes:
    """A small deterministic image: a colour per seed with a stripe whose place varies."""
    image = Image.new("RGB", size, COLOURS[seed % len(COLOURS)])
    for x in range(size[0]):
        image.putpixel((x, (seed * 3) % size[1]), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class Dataset:
    storage: LocalStorage
    images: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def add_images(
    engine: Engine,
    storage_dir: Path,
    specs: list[tuple[str, str, str | None]],
    *,
    task: str = "condition",
    seed_offset: int = 0,
) -> Dataset:
    """specs: (dataset, condition, split) per image; returns ids in the same order."""
    storage = LocalStorage(str(storage_dir))
    result = Dataset(storage)
    with Session(engine) as session:
        for index, (dataset, condition, split) in enumerate(specs):
            fmt = "PNG" if index % 2 == 0 else "JPEG"
            data = image_bytes(index + seed_offset, fmt)
            digest = hashlib.sha256(data).hexdigest()
            ext = "png" if fmt == "PNG" else "jpg"
            key = content_key(digest, ext)
            storage.put(key, data)
            local_path = (
                f"{split + '/' if split else ''}{condition}/img_{index + seed_offset:04d}.{ext}"
            )
            image = TrainingImage(
                image_url=storage.url_for(key),
                local_path=local_path,
                image_hash=digest,
                dataset_source=dataset,
                width=24,
                height=16,
                format=fmt.lower(),
                byte_size=len(data),
                split=split,
            )
            session.add(image)
            session.flush()
            label = ConditionLabel(
                image_id=image.id,
                condition_type=condition,
                task=task,
                source="dataset",
                status="pending",
                verified=False,
                metadata_={"dataset": dataset},
            )
            session.add(label)
            session.flush()
            result.images.append(image.id)
            result.labels.append(label.id)
        session.commit()
    return result


def add_label(engine: Engine, image_id: int, condition: str, *, task: str = "condition") -> int:
    with Session(engine) as session:
        label = ConditionLabel(
            image_id=image_id, condition_type=condition, task=task, source="dataset"
        )
        session.add(label)
        session.commit()
        return label.id


def add_duplicate(engine: Engine, a: int, b: int, distance: int = 2) -> None:
    with Session(engine) as session:
        session.add(
            ImageDuplicate(
                image_id_a=min(a, b), image_id_b=max(a, b), distance=distance, method="phash"
            )
        )
        session.commit()
