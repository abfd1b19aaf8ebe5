"""Near-duplicate linking after an image ingest has committed its rows.

The one call into `skinctl.dedup` is `_link_images`. What ingest adds around it is the resume
rule: the images of this run, plus those of earlier runs of the dataset that were killed or
failed before linking (status interrupted/failed without `near_duplicates_linked` in their
counts), so a resumed run ends equal to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, text

from skinctl.db.models import IngestRun, RunStatus, TrainingImage
from skinctl.progress import ReportProgress, no_progress

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from skinctl.engines.base import ComputeEngine

DEFERRED = "deferred: run `skinctl dedup scan`"
LINKED_FLAG = "near_duplicates_linked"  # set in the counts of an unfinished run once linked


@dataclass(frozen=True)
class Linked:
    pairs: int
    method: str | None  # None: there was nothing to link


def link_run_images(
    engine: Engine,
    *,
    dataset: str,
    run_id: int,
    storage_url: str,
    max_distance: int,
    workers: int,
    report: ReportProgress = no_progress,
    compute: ComputeEngine | None = None,
) -> Linked:
    """Link near duplicates of run `run_id`'s images and of unlinked images of earlier runs
    (their features computed on `compute`, the ingest's engine, when given)."""
    with engine.connect() as connection:
        run_ids = (
            connection.execute(
                select(IngestRun.id).where(
                    IngestRun.dataset_source == dataset,
                    or_(
                        IngestRun.id == run_id,
                        IngestRun.status.in_((RunStatus.interrupted, RunStatus.failed))
                        & IngestRun.counts[LINKED_FLAG].astext.is_(None),
                    ),
                )
            )
            .scalars()
            .all()
        )
        image_ids = (
            connection.execute(
                select(TrainingImage.id).where(TrainingImage.ingest_run_id.in_(run_ids))
            )
            .scalars()
            .all()
        )
    if not image_ids:
        return Linked(0, None)
    linked = _link_images(
        engine, storage_url, list(image_ids), max_distance, workers, report, compute
    )
    stale = [other for other in run_ids if other != run_id]
    if stale:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE ingest_runs SET counts = coalesce(counts, '{}'::jsonb) || "
                    "jsonb_build_object(CAST(:flag AS text), true) WHERE id = ANY(:ids)"
                ),
                {"flag": LINKED_FLAG, "ids": stale},
            )
    return linked


def _link_images(
    engine: Engine,
    storage_url: str,
    image_ids: list[int],
    max_distance: int,
    workers: int,
    report: ReportProgress,
    compute: ComputeEngine | None,
) -> Linked:
    from skinctl.dedup import link
    from skinctl.storage import open_storage

    def linking_progress(stage: str, completed: int, total: int | None) -> None:
        report(f"near duplicates: {stage}", completed, total)

    result = link(
        engine,
        open_storage(storage_url),
        image_ids=image_ids,
        max_distance=max_distance,
        workers=workers,
        report=linking_progress,
        compute=compute,
    )
    return Linked(result.pairs, result.method)
