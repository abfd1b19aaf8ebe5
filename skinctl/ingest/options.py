"""What one `skinctl ingest images` run was asked to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skinctl.datasets.readers import Layout
from skinctl.engines import EngineKind, open_engine
from skinctl.errors import UsageError
from skinctl.ingest.imageproc import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from skinctl.engines.base import ComputeEngine

DEFAULT_BATCH_SIZE = 500
DEFAULT_NEAR_DUPLICATE_DISTANCE = 8
MAX_NEAR_DUPLICATE_DISTANCE = 15
DATASET_NAME_MAX = 100  # ml_training_images.dataset_source is VARCHAR(100)


@dataclass(frozen=True)
class IngestOptions:
    dataset: str
    storage_url: str
    layout: Layout = Layout.AUTO
    labels: Path | str | None = None  # str: a gs:// label file (with a bucket source)
    metadata: Path | None = None
    filename_pattern: str | None = None
    class_level: int | None = None
    workers: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    near_duplicate_distance: int = DEFAULT_NEAR_DUPLICATE_DISTANCE
    link_near_duplicates: bool = True  # False: left to `skinctl dedup scan`
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    started_by: str | None = None
    engine: EngineKind = EngineKind.local  # where files are read and analysed
    ray_address: str | None = None  # a Ray cluster (with engine ray); None: a local Ray

    @contextmanager
    def compute_engine(self) -> Iterator[ComputeEngine]:
        """The engine the files are read on, for the length of the block."""
        compute = open_engine(self.engine, workers=self.workers, address=self.ray_address)
        try:
            yield compute
        finally:
            compute.close()

    def validate(self) -> None:
        if not self.dataset.strip() or len(self.dataset) > DATASET_NAME_MAX:
            raise UsageError(f"--dataset must be a name of 1 to {DATASET_NAME_MAX} characters.")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1.")
        if self.ray_address and self.engine != EngineKind.ray:
            raise UsageError("--address names a Ray cluster: it goes with --engine ray.")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1.")
        if not 0 <= self.near_duplicate_distance <= MAX_NEAR_DUPLICATE_DISTANCE:
            raise UsageError(
                f"--near-duplicate-distance must be between 0 and {MAX_NEAR_DUPLICATE_DISTANCE} bits."
            )

    def as_json(self) -> dict[str, Any]:
        """The options as `ingest_runs.options` records them (paths and enums as strings)."""
        return {
            key: str(value)
            if isinstance(value, Path)
            else value.value
            if isinstance(value, Enum)
            else value
            for key, value in asdict(self).items()
        }
