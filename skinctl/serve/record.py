"""`skinctl serve --record`: keep each analysed image and the model's answer for people to verify.

The image is stored content-addressed through the storage protocol (the same key ingest gives
it, so the same bytes are stored once) with a row in dataset `api` unless an image with that
SHA-256 exists already. The answer becomes `source='model'`, `status='pending'` labels (the
plan's `confidence_score` and `severity_level` filled) with a `create` entry in the label
history, so they appear in `skinctl label review`'s queue. One label per image, task and run:
analysing the same image again with the same model adds nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, TrainingImage
from skinctl.ingest.imageproc import PHASH_METHOD, ImageFacts
from skinctl.storage import content_key

DATASET = "api"
# The registry's task names -> the label table's task column.
LABEL_TASK = {"condition": "condition", "skin-type": "skin_type"}


@dataclass(frozen=True)
class ModelAnswer:
    """A model's top answer for one task, to be kept as a pending label."""

    task: str  # condition | skin-type
    label: str
    confidence: float
    run_id: int
    probabilities: dict[str, float]
    severity: str | None = None
    severity_confidence: float | None = None
    severity_run_id: int | None = None


@dataclass(frozen=True)
class Recorded:
    image_id: int
    new_image: bool
    label_ids: tuple[int, ...]  # labels added by this request (none when already recorded)


def record_analysis(
    engine: Engine,
    storage: Any,
    *,
    data: bytes,
    facts: ImageFacts,
    answers: list[ModelAnswer],
    request_id: str,
    user: str,
) -> Recorded:
    from skinctl.labels import LabelService

    key = content_key(facts.sha256, facts.ext)
    storage.put(key, data)  # content-addressed: a no-op when the bytes are there already
    labels = LabelService(engine, user)
    operation = str(uuid.uuid4())
    with Session(engine) as session, session.begin():
        image_id = session.scalar(
            insert(TrainingImage)
            .values(
                image_url=storage.url_for(key),
                local_path=f"api/{request_id}",
                image_hash=facts.sha256,
                dataset_source=DATASET,
                width=facts.width,
                height=facts.height,
                format=facts.format,
                byte_size=facts.byte_size,
                phash=facts.phash,
                phash_method=PHASH_METHOD,
                quality_flags=facts.quality_flags,
            )
            .on_conflict_do_nothing(index_elements=["image_hash"])
            .returning(TrainingImage.id)
        )
        new_image = image_id is not None
        if image_id is None:  # the conflict: the image is there already
            image_id = session.execute(
                select(TrainingImage.id).where(TrainingImage.image_hash == facts.sha256)
            ).scalar_one()
        added = []
        for answer in answers:
            task = LABEL_TASK[answer.task]
            exists = session.scalar(
                select(ConditionLabel.id)
                .where(
                    ConditionLabel.image_id == image_id,
                    ConditionLabel.task == task,
                    ConditionLabel.source == "model",
                    ConditionLabel.metadata_["run_id"].astext == str(answer.run_id),
                )
                .limit(1)
            )
            if exists is not None:
                continue
            label = ConditionLabel(
                image_id=image_id,
                task=task,
                condition_type=answer.label,
                confidence_score=answer.confidence,
                severity_level=answer.severity,
                source="model",
                status="pending",
                verified=False,
                created_at=datetime.now(),
                metadata_={
                    "run_id": answer.run_id,
                    "request_id": request_id,
                    "probabilities": answer.probabilities,
                    **(
                        {
                            "severity_confidence": answer.severity_confidence,
                            "severity_run_id": answer.severity_run_id,
                        }
                        if answer.severity
                        else {}
                    ),
                },
            )
            session.add(label)
            labels.record_new_label(
                session,
                operation,
                label,
                f"model answer of run {answer.run_id} (request {request_id})",
            )
            added.append(label.id)
    return Recorded(image_id, new_image, tuple(added))
