"""GCS tests run the real google-cloud-storage client against gcp-storage-emulator, in-process."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from skinctl.storage.base import Storage, content_key


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    port = server._api._httpd.server_address[1]
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def gcs_url(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket (with a prefix) on the emulator; STORAGE_EMULATOR_HOST points at it."""
    from skinctl.storage.gcs import GCSStorage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    bucket = f"skinctl-test-{secrets.token_hex(4)}"
    GCSStorage(f"gs://{bucket}").ensure_bucket()
    return f"gs://{bucket}/images"


@pytest.fixture
def gcs(gcs_url: str):
    from skinctl.storage.gcs import GCSStorage

    return GCSStorage(gcs_url)


def image_bytes(index: int) -> bytes:
    """Distinct small payloads standing in for images (storage never decodes them)."""
    return (
        b"\xff\xd8\xff\xe0"
        + hashlib.sha256(str(index).encode()).digest() * 8
        + index.to_bytes(4, "big")
    )


def store_images(
    engine: Engine, storage: Storage, count: int, dataset: str = "skin-types", start: int = 0
) -> list[int]:
    """Rows the way ingest records them: bytes stored content-addressed, image_url/image_hash set."""
    from sqlalchemy.orm import Session

    from skinctl.db.models import TrainingImage

    ids = []
    with Session(engine) as session:
        for index in range(start, start + count):
            data = image_bytes(index)
            sha = hashlib.sha256(data).hexdigest()
            key = content_key(sha, "jpg")
            storage.put(key, data)
            row = TrainingImage(
                image_url=storage.url_for(key),
                image_hash=sha,
                dataset_source=dataset,
                local_path=f"train/dry/{index}.jpg",
                byte_size=len(data),
                format="JPEG",
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
        session.commit()
    return ids


@pytest.fixture
def local_store(tmp_path: Path):
    from skinctl.storage.local import LocalStorage

    return LocalStorage(str(tmp_path / "images"))


@pytest.fixture
def storage_cli(cli, gcs_emulator: str):
    """The CLI with the emulator variable set for the in-process run."""

    def run(*args: str, env: dict[str, str] | None = None):
        return cli(*args, env={"STORAGE_EMULATOR_HOST": gcs_emulator, **(env or {})})

    return run


__all__ = ["image_bytes", "store_images", "os"]
