"""Fixtures for dedup tests: a local image store and a helper that files images the way
ingest does (image row, source row, label row), with generated pictures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from skinctl.db.models import ConditionLabel, ImageSource, TrainingImage
from skinctl.ingest.imageproc import analyse_bytes
from skinctl.storage import content_key
from skinctl.storage.local import LocalStorage


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "images"))


class Filer:
    """Stores bytes content-addressed and writes the rows ingest would write."""

    def __init__(self, engine: Engine, storage: LocalStorage) -> None:
        self.engine = engine
        self.storage = storage

    def add(
        self,
        data: bytes,
        path: str,
        *,
        dataset: str = "gen",
        label: str | list[str] | None = None,
        task: str = "condition",
    ) -> int:
        """A new image row with one source and optional label; returns its id."""
        facts = analyse_bytes(data)
        key = content_key(facts.sha256, facts.ext)
        self.storage.put(key, data)
        with self.engine.begin() as connection:
            image_id = connection.execute(
                insert(TrainingImage)
                .values(
                    image_url=self.storage.url_for(key),
                    local_path=path,
                    image_hash=facts.sha256,
                    dataset_source=dataset,
                    width=facts.width,
                    height=facts.height,
                    format=facts.format,
                    byte_size=facts.byte_size,
                    phash=facts.phash,
                    phash_method="test",
                )
                .returning(TrainingImage.id)
            ).scalar_one()
        self.add_source(image_id, path, dataset=dataset, label=label, task=task)
        return image_id

    def add_source(
        self,
        image_id: int,
        path: str,
        *,
        dataset: str = "gen",
        label: str | list[str] | None = None,
        task: str = "condition",
    ) -> None:
        """Another file with the same bytes (an exact duplicate), with its own label."""
        with self.engine.begin() as connection:
            source_id = connection.execute(
                insert(ImageSource)
                .values(image_id=image_id, dataset_source=dataset, local_path=path)
                .returning(ImageSource.id)
            ).scalar_one()
            for name in [label] if isinstance(label, str) else label or []:
                connection.execute(
                    insert(ConditionLabel).values(
                        image_id=image_id,
                        condition_type=name,
                        task=task,
                        image_source_id=source_id,
                        metadata_={"origin": path},
                    )
                )


@pytest.fixture
def filer(engine: Engine, store: LocalStorage) -> Filer:
    return Filer(engine, store)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
