"""`skinctl label prelabel`: a run's answers for unlabelled images, written as pending
`source='model'` labels (the plan's `confidence_score` and `severity_level` filled) for people
to verify; the queue shows the most uncertain first. Each label gets its `create` entry in the
label history through the label service, all in one operation."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, exists, or_, select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImageSource, TrainingImage
from skinctl.errors import UsageError
from skinctl.progress import ReportProgress, no_progress
from skinctl.train import dataset as ds
from skinctl.train.choices import Task
from skinctl.train.fitting import predict_probabilities

STAGE = "prelabel"
LABEL_TASK = {Task.condition: "condition", Task.skin_type: "skin_type"}


@dataclass(frozen=True)
class PrelabelResult:
    run: int
    task: str
    datasets: list[str]
    unlabelled: int  # images of the datasets with no live label of the task
    labelled: int  # pending model labels written
    classes: dict[str, int]  # class -> labels written
    mean_confidence: float | None
    severity_run: int | None
    with_severity: int  # labels that also got a severity level
    operation_id: str | None  # the label history operation (one undo per label reverts it)


def unlabelled_images(
    session: Session, datasets: Sequence[str], task: str, limit: int | None
) -> list[ds.Example]:
    """Images of `datasets` (their own rows, or exact copies ingested from them) without a
    live label of `task`."""
    in_dataset = or_(
        TrainingImage.dataset_source.in_(list(datasets)),
        exists().where(
            ImageSource.image_id == TrainingImage.id,
            ImageSource.dataset_source.in_(list(datasets)),
        ),
    )
    labelled = exists().where(
        ConditionLabel.image_id == TrainingImage.id,
        ConditionLabel.task == task,
        ConditionLabel.status != "rejected",
    )
    query = (
        select(TrainingImage.id, TrainingImage.image_url, TrainingImage.dataset_source)
        .where(in_dataset, ~labelled)
        .order_by(TrainingImage.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        ds.Example(image_id=i, image_url=url, labels=[], dataset_source=source)
        for i, url, source in session.execute(query)
    ]


def prelabel(
    engine: Engine,
    storage: Any,
    run: str | int,
    datasets: Sequence[str],
    *,
    home: Path,
    user: str,
    severity_run: str | int | None = None,
    promoted_severity_run: int | None = None,
    limit: int | None = None,
    report: ReportProgress = no_progress,
) -> PrelabelResult:
    from skinctl.labels import LabelService
    from skinctl.train.pipeline import ByteReader
    from skinctl.train.predict import find_severity_run, load_run

    if not datasets:
        raise UsageError("Name the images to pre-label with --dataset.")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be 1 or more.")
    labels = LabelService(engine, user)  # checks the user before any work
    loaded = load_run(engine, storage, run, home)
    if loaded.task not in LABEL_TASK or loaded.multi_label:
        raise UsageError(
            f"Run {loaded.id} is a {'multi-label ' if loaded.multi_label else ''}{loaded.task} "
            "run; pre-labels come from a single-label condition or skin-type run.",
            hint="`skinctl train list` shows the runs and their tasks.",
        )
    task = LABEL_TASK[Task(loaded.task)]
    with Session(engine) as session:
        examples = unlabelled_images(session, datasets, task, limit)
    found = None
    if loaded.task == Task.condition:
        found = find_severity_run(
            engine, loaded.classes, explicit=severity_run, promoted=promoted_severity_run
        )
    elif severity_run is not None:
        raise UsageError("--severity-run goes with a condition run.")
    if not examples:
        return PrelabelResult(
            loaded.id, task, list(datasets), 0, 0, {}, None, found and found[0], 0, None
        )
    reader = ByteReader(storage)
    report(STAGE, 0, len(examples))
    probabilities = predict_probabilities(
        loaded.model, reader, examples, loaded.image_size, loaded.options.batch_size
    )
    levels = None
    if found is not None:
        severity = load_run(engine, storage, found[0], home)
        levels = (
            severity.classes,
            predict_probabilities(
                severity.model, reader, examples, severity.image_size, loaded.options.batch_size
            ),
        )
    report(STAGE, len(examples), len(examples))

    operation = str(uuid.uuid4())
    written: Counter[str] = Counter()
    graded = 0
    confidences = []
    with Session(engine) as session, session.begin():
        for i, example in enumerate(examples):
            p = probabilities[i]
            best = int(np.argmax(p))
            name, confidence = loaded.classes[best], float(p[best])
            metadata: dict[str, Any] = {
                "run_id": loaded.id,
                "prelabel": True,
                "probabilities": {c: float(p[j]) for j, c in enumerate(loaded.classes)},
            }
            level = None
            if levels is not None and found is not None and name == found[1]:
                level_names, level_probs = levels
                at = int(np.argmax(level_probs[i]))
                level = level_names[at]
                metadata |= {
                    "severity_confidence": float(level_probs[i][at]),
                    "severity_run_id": found[0],
                }
                graded += 1
            label = ConditionLabel(
                image_id=example.image_id,
                task=task,
                condition_type=name,
                confidence_score=confidence,
                severity_level=level,
                source="model",
                status="pending",
                verified=False,
                created_at=datetime.now(),
                metadata_=metadata,
            )
            session.add(label)
            labels.record_new_label(session, operation, label, f"pre-label of run {loaded.id}")
            written[name] += 1
            confidences.append(confidence)
    return PrelabelResult(
        run=loaded.id,
        task=task,
        datasets=list(datasets),
        unlabelled=len(examples),
        labelled=sum(written.values()),
        classes=dict(sorted(written.items())),
        mean_confidence=float(np.mean(confidences)) if confidences else None,
        severity_run=found[0] if found else None,
        with_severity=graded,
        operation_id=operation,
    )
