"""Reading, comparing and deleting recorded runs (no TensorFlow)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    ImagePrediction,
    TrainingClassMetric,
    TrainingEpoch,
    TrainingGroupMetric,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.errors import NotFound, UsageError


def resolve_run(session: Session, ref: str | int, *, with_model: bool = False) -> TrainingRun:
    """A run by id, or `latest` (the newest run; with a saved model when `with_model`)."""
    if str(ref).lower() == "latest":
        query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)
        if with_model:
            query = query.where(TrainingRun.model_uri.is_not(None))
        run = session.scalar(query)
        if run is None:
            raise NotFound(
                "No training run" + (" with a saved model" if with_model else "") + " is recorded.",
                hint="Train one with `skinctl train run --task ...`.",
            )
        return run
    try:
        run_id = int(ref)
    except ValueError:
        raise UsageError(f"{ref!r} is not a run id.", hint="Pass a run id from `skinctl train list`, or `latest`.") from None
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"Training run {run_id} does not exist.", hint="See `skinctl train list`.")
    if with_model and not run.model_uri:
        raise NotFound(f"Training run {run_id} ({run.status}) has no saved model.")
    return run


def _row(run: TrainingRun) -> dict[str, Any]:
    # `metrics` may be written by hand (any JSON): read the trainer's shape only when it is there
    test = run.metrics.get("test") if isinstance(run.metrics, dict) else None
    test = test if isinstance(test, dict) else {}
    return {
        "id": run.id,
        "model_name": run.model_name,
        "version": run.version,
        "task": run.task,
        "architecture": run.architecture,
        "status": run.status,
        "training_date": run.training_date,
        "dataset_size": run.dataset_size,
        "accuracy": run.accuracy,
        "accuracy_ci95": test.get("accuracy_ci95"),
        "majority_rate": run.majority_rate,
        "precision_score": run.precision_score,
        "recall": run.recall,
        "f1_score": run.f1_score,
        "f1_ci95": test.get("f1_macro_ci95"),
        "best_epoch": run.best_epoch,
        "epochs_run": run.epochs_run,
        "training_duration_minutes": run.training_duration_minutes,
    }


def list_runs(session: Session, *, task: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    query = select(TrainingRun).order_by(TrainingRun.id.desc())
    if task:
        query = query.where(TrainingRun.task == task)
    if limit:
        query = query.limit(limit)
    return [_row(run) for run in session.scalars(query)]


def run_detail(session: Session, ref: str | int) -> dict[str, Any]:
    run = resolve_run(session, ref)
    run_id = run.id
    epochs = session.scalars(select(TrainingEpoch).where(TrainingEpoch.run_id == run_id).order_by(TrainingEpoch.epoch))
    classes = session.scalars(
        select(TrainingClassMetric).where(TrainingClassMetric.run_id == run_id).order_by(TrainingClassMetric.class_name)
    )
    groups = session.scalars(
        select(TrainingGroupMetric).where(TrainingGroupMetric.run_id == run_id)
        .order_by(TrainingGroupMetric.group_by, TrainingGroupMetric.group_value)
    )
    splits = dict(
        session.execute(
            select(TrainingRunSplit.split, func.count()).where(TrainingRunSplit.run_id == run_id)
            .group_by(TrainingRunSplit.split)
        ).all()
    )
    scored = session.scalar(select(func.count()).select_from(ImagePrediction).where(ImagePrediction.run_id == run_id))
    return {
        **_row(run),
        "model_uri": run.model_uri,
        "seed": run.seed,
        "started_by": run.started_by,
        "finished_at": run.finished_at,
        "notes": run.notes,
        "hyperparameters": run.hyperparameters,
        "metrics": run.metrics,
        "confusion_matrix": run.confusion_matrix,
        "split_sizes": {name: splits.get(name, 0) for name in ("train", "val", "test")},
        "images_scored": scored,
        "epochs": [
            {"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss,
             "train_accuracy": e.train_accuracy, "val_accuracy": e.val_accuracy,
             "learning_rate": e.learning_rate, "seconds": e.seconds}
            for e in epochs
        ],
        "per_class": [
            {"class_name": c.class_name, "precision": c.precision, "recall": c.recall, "f1": c.f1,
             "support": c.support, "threshold": c.threshold}
            for c in classes
        ],
        "per_group": [
            {"group_by": g.group_by, "group_value": g.group_value, "support": g.support,
             "accuracy": g.accuracy, "accuracy_ci95": [g.accuracy_low, g.accuracy_high],
             "f1_macro": g.f1_macro, "majority_rate": g.majority_rate}
            for g in groups
        ],
    }


COMPARED = (
    "model_name", "version", "task", "architecture", "status", "dataset_size", "accuracy",
    "accuracy_ci95", "majority_rate", "f1_score", "f1_ci95", "precision_score", "recall",
    "best_epoch", "epochs_run", "training_duration_minutes", "split_sizes",
)
COMPARED_OPTIONS = (
    "datasets", "verified_only", "classes", "multi_label", "balance_by", "model", "image_size",
    "epochs", "batch_size", "learning_rate", "seed", "val_fraction", "test_fraction", "split",
    "patience", "weights",
)


def compare_runs(session: Session, ref_a: str | int, ref_b: str | int) -> dict[str, Any]:
    """Side-by-side values of two runs; `differs` marks what changed. Per-class F1 and the
    overlap of their test splits (runs on different test images are not directly comparable)."""
    a, b = run_detail(session, ref_a), run_detail(session, ref_b)
    rows = []
    for key in COMPARED:
        rows.append({"field": key, "a": a.get(key), "b": b.get(key), "differs": a.get(key) != b.get(key)})
    hp_a, hp_b = a["hyperparameters"] or {}, b["hyperparameters"] or {}
    for key in COMPARED_OPTIONS:
        rows.append({"field": f"option {key}", "a": hp_a.get(key), "b": hp_b.get(key),
                     "differs": hp_a.get(key) != hp_b.get(key)})
    f1_a = {c["class_name"]: c["f1"] for c in a["per_class"]}
    f1_b = {c["class_name"]: c["f1"] for c in b["per_class"]}
    for name in sorted(set(f1_a) | set(f1_b)):
        rows.append({"field": f"f1 {name}", "a": f1_a.get(name), "b": f1_b.get(name),
                     "differs": f1_a.get(name) != f1_b.get(name)})

    def test_ids(run_id: int) -> set[int]:
        return set(session.scalars(select(TrainingRunSplit.image_id).where(
            TrainingRunSplit.run_id == run_id, TrainingRunSplit.split == "test")))

    ids_a, ids_b = test_ids(a["id"]), test_ids(b["id"])
    overlap = len(ids_a & ids_b) / len(ids_a | ids_b) if ids_a | ids_b else 1.0
    return {"a": a["id"], "b": b["id"], "rows": rows, "test_split_overlap": overlap}


def delete_run(session: Session, ref: str | int, storage: Any | None) -> dict[str, Any]:
    """Delete a run, its detail rows (cascade) and its saved model object."""
    run = resolve_run(session, ref)
    uri, run_id = run.model_uri, run.id
    session.delete(run)
    session.flush()
    removed_model = False
    if uri and storage is not None:
        try:
            storage.delete(storage.key_for(uri))
            removed_model = True
        except ValueError:
            pass  # the model lives in another store; leave it
    return {"id": run_id, "deleted": True, "model_uri": uri, "model_deleted": removed_model}
