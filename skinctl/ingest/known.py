"""What the database already holds of a dataset: the lookups that make a rerun resume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from skinctl.db.models import ImageSource, TrainingImage

if TYPE_CHECKING:
    from sqlalchemy import Engine

LOOKUP_CHUNK = 5000


def known_sources(engine: Engine, dataset: str) -> dict[str, tuple[int, int]]:
    """{local_path: (image_sources id, image id)} of every file of `dataset` already ingested."""
    with engine.connect() as connection:
        return {
            path: (source_id, image_id)
            for path, source_id, image_id in connection.execute(
                select(ImageSource.local_path, ImageSource.id, ImageSource.image_id).where(
                    ImageSource.dataset_source == dataset
                )
            )
        }


def existing_hashes(engine: Engine, hashes: list[str]) -> set[str]:
    """The SHA-256s among `hashes` that already have an image row (any dataset)."""
    found: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(hashes), LOOKUP_CHUNK):
            found.update(
                image_hash
                for image_hash in connection.execute(
                    select(TrainingImage.image_hash).where(
                        TrainingImage.image_hash.in_(hashes[start : start + LOOKUP_CHUNK])
                    )
                ).scalars()
                if image_hash is not None
            )
    return found
