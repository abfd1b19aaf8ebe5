"""Backfill the estimated skin tone of stored images (those ingested before tones existed, or
with an older `TONE_METHOD`). Resumable: each batch commits, and a row is done once its
`skin_tone_method` is the current method, so a second run picks up where one stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, or_, select, update

from skinctl.db.models import TrainingImage
from skinctl.errors import StorageError
from skinctl.ingest.imageproc import ImageRejected, decode_reduced
from skinctl.ingest.tone import TONE_METHOD, estimate_tone, tone_columns
from skinctl.progress import ReportProgress, no_progress
from skinctl.storage import Storage

BATCH = 200


@dataclass(frozen=True)
class UnreadableTone:
    image_id: int
    reason: str


@dataclass(frozen=True)
class ToneBackfillSummary:
    method: str
    images: int  # rows to estimate when the run started (without a tone, or all: recompute)
    estimated: int  # got a tone
    no_skin: int  # decoded, but too little skin (or grayscale): tone stays empty
    unreadable: tuple[UnreadableTone, ...]
    seconds: float


def _pending(dataset: str | None, recompute: bool):  # noqa: ANN202 - a select
    query = select(TrainingImage.id, TrainingImage.image_url)
    if not recompute:
        query = query.where(
            or_(
                TrainingImage.skin_tone_method.is_(None),
                TrainingImage.skin_tone_method != TONE_METHOD,
            )
        )
    if dataset is not None:
        query = query.where(TrainingImage.dataset_source == dataset)
    return query


def backfill_tones(
    engine: Engine,
    storage: Storage,
    *,
    dataset: str | None = None,
    recompute: bool = False,
    report: ReportProgress = no_progress,
) -> ToneBackfillSummary:
    """Estimate and store the tone of every image that has none (all of them with recompute)."""
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(_pending(dataset, recompute).order_by(TrainingImage.id)).all()
    estimated = no_skin = 0
    unreadable: list[UnreadableTone] = []
    report("estimating skin tone", 0, len(rows))
    for start in range(0, len(rows), BATCH):
        updates = []
        for row in rows[start : start + BATCH]:
            try:
                data = storage.get(storage.key_for(row.image_url))
                decoded = decode_reduced(data)
            except (StorageError, ValueError, OSError) as error:
                unreadable.append(UnreadableTone(row.id, f"cannot read {row.image_url}: {error}"))
                continue
            except ImageRejected as error:
                unreadable.append(UnreadableTone(row.id, f"{row.image_url}: {error.detail}"))
                continue
            tone = estimate_tone(decoded.colour) if decoded.colour is not None else None
            if tone is None:
                no_skin += 1
            else:
                estimated += 1
            updates.append({"image_id": row.id, **tone_columns(tone)})
        if updates:
            with engine.begin() as connection:
                for values in updates:
                    image_id = values.pop("image_id")
                    connection.execute(
                        update(TrainingImage).where(TrainingImage.id == image_id).values(**values)
                    )
        report("estimating skin tone", min(start + BATCH, len(rows)), len(rows))
    return ToneBackfillSummary(
        method=TONE_METHOD,
        images=len(rows),
        estimated=estimated,
        no_skin=no_skin,
        unreadable=tuple(unreadable),
        seconds=round(time.perf_counter() - started, 2),
    )
