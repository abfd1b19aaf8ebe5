"""What an image ingest found: the running tally, and the frozen summary built from it.

`IngestSummary` is the `--json` document of `ingest images` and `demo` (field order = key
order); `IngestResult` adds the rejected files, which the report CSV and the human output list.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class IngestStatus(StrEnum):
    """How a run ended (the `ingest_runs.status` values, plus a dry run that records no run)."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DRY_RUN = "dry_run"


@dataclass(frozen=True)
class Rejection:
    local_path: str
    reason: str
    detail: str


@dataclass(frozen=True)
class IngestSummary:
    dataset: str
    source: str
    layout: str
    dry_run: bool
    run_id: int | None
    status: IngestStatus
    notes: tuple[str, ...]
    scanned: int
    ingested: int
    exact_duplicates: int
    already_ingested: int
    near_duplicates: int
    near_duplicate_method: str | None
    rejected: int
    rejected_by_reason: dict[str, int]
    labels: int
    unlabeled: int
    metadata_rows: int
    metadata_problems: tuple[str, ...]
    metadata_unmatched_rows: int
    skipped_non_image_files: int
    stored_objects: int
    seconds: float
    images_per_second: float
    nothing_new: bool

    @property
    def has_rejections(self) -> bool:
        return self.rejected > 0 or bool(self.metadata_problems)

    def counts(self) -> dict[str, Any]:
        """What the `ingest_runs.counts` column records: the counts, without the run's identity."""
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_COUNTS
        }
        data["rejected_by_reason"] = dict(self.rejected_by_reason)
        data["metadata_problems"] = len(self.metadata_problems)
        return data


_NOT_COUNTS = frozenset(
    {"dataset", "source", "layout", "dry_run", "run_id", "status", "notes", "metadata_problems"}
)


@dataclass(frozen=True)
class IngestResult:
    summary: IngestSummary
    rejections: tuple[Rejection, ...]  # every rejected file, in the order found


@dataclass
class IngestTally:
    """The counts while a run goes; `summary()` freezes them."""

    dataset: str
    source: str
    layout: str
    dry_run: bool
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)
    scanned: int = 0
    ingested: int = 0
    exact_duplicates: int = 0
    already_ingested: int = 0
    near_duplicates: int = 0
    near_duplicate_method: str | None = None
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    labels: int = 0
    unlabeled: int = 0
    metadata_rows: int = 0
    metadata_problems: list[str] = field(default_factory=list)
    metadata_unmatched_rows: int = 0
    skipped_non_image_files: int = 0
    stored_objects: int = 0
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)
        self.rejected_by_reason[rejection.reason] += 1

    def stop_clock(self, started: float) -> None:
        """`started`: the `time.monotonic()` the run began at."""
        self.seconds = round(time.monotonic() - started, 3)

    def summary(self, status: IngestStatus) -> IngestSummary:
        rejected = len(self.rejections)
        read = self.ingested + self.exact_duplicates + rejected
        return IngestSummary(
            dataset=self.dataset,
            source=self.source,
            layout=self.layout,
            dry_run=self.dry_run,
            run_id=self.run_id,
            status=status,
            notes=tuple(self.notes),
            scanned=self.scanned,
            ingested=self.ingested,
            exact_duplicates=self.exact_duplicates,
            already_ingested=self.already_ingested,
            near_duplicates=self.near_duplicates,
            near_duplicate_method=self.near_duplicate_method,
            rejected=rejected,
            rejected_by_reason=dict(self.rejected_by_reason),
            labels=self.labels,
            unlabeled=self.unlabeled,
            metadata_rows=self.metadata_rows,
            metadata_problems=tuple(self.metadata_problems),
            metadata_unmatched_rows=self.metadata_unmatched_rows,
            skipped_non_image_files=self.skipped_non_image_files,
            stored_objects=self.stored_objects,
            seconds=self.seconds,
            images_per_second=round(read / self.seconds, 1) if self.seconds > 0 else 0.0,
            nothing_new=self.ingested == 0
            and self.exact_duplicates == 0
            and self.labels == 0
            and self.metadata_rows == 0,
        )

    def counts(self) -> dict[str, Any]:
        """The running counts, as `ingest_runs.counts` records them."""
        return self.summary(IngestStatus.RUNNING).counts()

    def result(self, status: IngestStatus) -> IngestResult:
        return IngestResult(self.summary(status), tuple(self.rejections))
