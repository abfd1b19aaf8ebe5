"""Writing a training run to the database: the run row and its split (`start_run`), each
epoch as it ends (`record_epoch`), the test evaluation with the saved model
(`record_evaluation`), and the final status (`finish_run`). One transaction each, so an
interrupted run keeps what was recorded before it stopped.

In a multi-worker run (TF_CONFIG) every worker trains the same model; only the chief records it
(`is_chief`), so the run is one row however many workers took part."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    RunStatus,
    TrainingClassMetric,
    TrainingEpoch,
    TrainingGroupMetric,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.train.evaluate import RunEvaluation
from skinctl.train.fitting import Epoch, FitResult, Prepared
from skinctl.train.options import TrainOptions
from skinctl.train.save import SavedModel


def is_chief(environ: dict[str, str] | None = None) -> bool:
    """Whether this process records the run: always, except in a multi-worker cluster
    (TF_CONFIG), where the chief does (a `chief` task, or worker 0 when there is none)."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return True
    config = json.loads(raw)
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not cluster:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def next_version(session: Session, name: str) -> str:
    """One more than the highest numeric version of this model name."""
    versions = session.scalars(select(TrainingRun.version).where(TrainingRun.model_name == name))
    numbers = [int(v) for v in versions if v and v.isdigit()]
    return str(max(numbers, default=0) + 1)


def start_run(
    engine: Engine,
    options: TrainOptions,
    prepared: Prepared,
    hyperparameters: dict[str, Any],
    *,
    name: str,
    user: str | None,
) -> int:
    """The run row (status running) and the split of every selected image; returns the run id."""
    with Session(engine) as session, session.begin():
        run = TrainingRun(
            model_name=name,
            version=options.version or next_version(session, name),
            dataset_size=len(prepared.selection.examples),
            hyperparameters=hyperparameters,
            notes=options.notes,
            task=options.task,
            architecture=options.model,
            status=RunStatus.running,
            seed=options.seed,
            started_by=user,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        session.execute(
            insert(TrainingRunSplit),
            [
                {
                    "run_id": run_id,
                    "image_id": e.image_id,
                    "split": prepared.split_of[e.image_id],
                    "split_group": prepared.groups[e.image_id],
                }
                for e in prepared.selection.examples
            ],
        )
    return run_id


def record_epoch(engine: Engine, run_id: int, epoch: Epoch) -> None:
    with Session(engine) as session, session.begin():
        session.add(TrainingEpoch(run_id=run_id, **asdict(epoch)))


def record_evaluation(
    engine: Engine,
    run_id: int,
    classes: list[str],
    multi_label: bool,
    result: FitResult,
    evaluation: RunEvaluation,
    saved: SavedModel,
) -> None:
    """The test figures, per class and per group, and where the model is (with its checksum)."""
    test = evaluation.test
    with Session(engine) as session, session.begin():
        run = session.get_one(TrainingRun, run_id)
        run.accuracy = test.accuracy
        run.precision_score = test.precision
        run.recall = test.recall
        run.f1_score = test.f1
        run.majority_rate = test.majority_rate
        run.best_epoch = result.best_epoch
        run.epochs_run = len(result.history)
        run.model_uri = saved.uri
        run.confusion_matrix = {
            "classes": classes,
            "matrix": test.matrix.tolist(),
            "rows": "true class",
            "columns": "predicted class",
            **({"kind": "multi-label co-occurrence"} if multi_label else {}),
        }
        run.metrics = {
            "test": test.summary(),
            "val_accuracy_best_epoch": result.best_val_accuracy,
            "thresholds": evaluation.thresholds,
            "warning": evaluation.warning,
            # what `skinctl model` verifies a downloaded model against
            "model_sha256": saved.sha256,
        }
        for row in test.per_class:
            threshold = None
            if evaluation.thresholds is not None:
                threshold = float(evaluation.thresholds[row["class_name"]])
            session.add(TrainingClassMetric(run_id=run_id, threshold=threshold, **row))
        for group in evaluation.groups:
            session.add(TrainingGroupMetric(run_id=run_id, **asdict(group)))


def finish_run(
    engine: Engine, run_id: int, started: float, *, status: RunStatus, note: str | None
) -> None:
    """The final status, the end time and duration, and a note on how it ended."""
    seconds = time.monotonic() - started
    with Session(engine) as session, session.begin():
        run = session.get_one(TrainingRun, run_id)
        run.status = status
        run.finished_at = datetime.now()
        run.training_duration_minutes = round(seconds / 60)
        run.metrics = {**(run.metrics or {}), "duration_seconds": round(seconds, 1)}
        if note:
            run.notes = f"{run.notes}\n{note}" if run.notes else note
