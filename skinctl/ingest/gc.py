"""Stored objects no image row references.

An ingest stores bytes before it commits the rows that point at them, so a killed run can leave
objects behind; running the same ingest again references them (a re-put of the same content is a
no-op). When that rerun never comes, this finds them; deleting them is the caller's explicit
choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.storage import Storage


@dataclass(frozen=True)
class GcReport:
    stored: int
    referenced: int
    unreferenced: list[str]  # keys
    deleted: int


def collect_unreferenced(engine: Engine, storage: Storage, *, delete: bool = False) -> GcReport:
    """Objects in `storage` that no `ml_training_images.image_url` names; deleted if asked."""
    from sqlalchemy import select

    from skinctl.db.models import TrainingImage

    prefix = storage.url_for("")
    with engine.connect() as connection:
        urls = connection.execute(
            select(TrainingImage.image_url).where(TrainingImage.image_url.startswith(prefix, autoescape=True))
        ).scalars()
        referenced = {storage.key_for(url) for url in urls}
    keys = list(storage.iter_keys())
    unreferenced = sorted(key for key in keys if key not in referenced)
    deleted = 0
    if delete:
        for key in unreferenced:
            storage.delete(key)
            deleted += 1
    return GcReport(len(keys), len(referenced), unreferenced, deleted)
