"""Saving a trained model to the image store, next to the images: `models/run-<id>.keras`,
with the SHA-256 of the saved file so whoever loads it later can verify the bytes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SavedModel:
    uri: str  # where the store keeps it (file://... or gs://...)
    sha256: str  # hex SHA-256 of the .keras file's bytes


def model_key(run_id: int) -> str:
    return f"models/run-{run_id}.keras"


def save_model(model: Any, storage: Any, run_id: int, run_dir: Path) -> SavedModel:
    """Write the model to a scratch file under `run_dir`, upload those bytes, hash the same bytes."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model_file = run_dir / f"run-{run_id}.keras"
    model.save(model_file)
    data = model_file.read_bytes()
    key = model_key(run_id)
    storage.put(key, data)
    return SavedModel(uri=storage.url_for(key), sha256=hashlib.sha256(data).hexdigest())
