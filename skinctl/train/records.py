"""Reading, comparing and deleting recorded runs (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    EvaluationClassMetric,
    EvaluationGroupMetric,
    ImagePrediction,
    ModelEvaluation,
    RunStatus,
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
        raise UsageError(
            f"{ref!r} is not a run id.",
            hint="Pass a run id from `skinctl train list`, or `latest`.",
        ) from None
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"Training run {run_id} does not exist.", hint="See `skinctl train list`.")
    if with_model and not run.model_uri:
        raise NotFound(f"Training run {run_id} ({run.status}) has no saved model.")
    return run


@dataclass(frozen=True)
class RunSummary:
    """One run as `train list` shows it."""

    id: int
    model_name: str
    version: str | None
    task: str | None
    architecture: str | None
    status: RunStatus
    training_date: datetime | None
    dataset_size: int | None
    accuracy: float | None
    accuracy_ci95: list[float] | None
    majority_rate: float | None
    precision_score: float | None
    recall: float | None
    f1_score: float | None
    f1_ci95: list[float] | None
    best_epoch: int | None
    epochs_run: int | None
    training_duration_minutes: int | None


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    learning_rate: float | None
    seconds: float | None


@dataclass(frozen=True)
class ClassRow:
    class_name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int | None
    threshold: float | None


@dataclass(frozen=True)
class GroupRow:
    group_by: str
    group_value: str
    support: int | None
    accuracy: float | None
    accuracy_ci95: list[float | None]
    f1_macro: float | None
    majority_rate: float | None


@dataclass(frozen=True)
class EvaluationSummary:
    """One recorded evaluation of a run on other data (`skinctl train evaluate`)."""

    id: int
    run_id: int
    datasets: list[str]
    evaluated_by: str | None
    evaluated_at: datetime
    images: int
    exact_copies_left_out: int
    near_copies_left_out: int
    left_out: dict[str, int]
    accuracy: float | None
    accuracy_ci95: list[float | None]
    f1_macro: float | None
    f1_ci95: list[float | None]
    majority_rate: float | None


def evaluation_summary(row: ModelEvaluation) -> EvaluationSummary:
    return EvaluationSummary(
        id=row.id,
        run_id=row.run_id,
        datasets=list(row.datasets),
        evaluated_by=row.evaluated_by,
        evaluated_at=row.evaluated_at,
        images=row.images,
        exact_copies_left_out=row.exact_copies_left_out,
        near_copies_left_out=row.near_copies_left_out,
        left_out=dict(row.left_out or {}),
        accuracy=row.accuracy,
        accuracy_ci95=[row.accuracy_low, row.accuracy_high],
        f1_macro=row.f1_macro,
        f1_ci95=[row.f1_low, row.f1_high],
        majority_rate=row.majority_rate,
    )


@dataclass(frozen=True)
class RunDetail(RunSummary):
    """Everything recorded about one run (`train show`, and what `train run` returns)."""

    model_uri: str | None
    seed: int | None
    started_by: str | None
    finished_at: datetime | None
    notes: str | None
    hyperparameters: dict[str, Any] | None
    metrics: dict[str, Any] | None
    confusion_matrix: dict[str, Any] | None
    split_sizes: dict[str, int]
    images_scored: int
    epochs: list[EpochRow]
    per_class: list[ClassRow]
    per_group: list[GroupRow]
    evaluations: list[EvaluationSummary]  # the run's model on data it never saw

    @property
    def test_metrics(self) -> dict[str, Any]:
        """The trainer's test summary in `metrics`, or {} (hand-written rows may hold any JSON)."""
        test = self.metrics.get("test") if isinstance(self.metrics, dict) else None
        return test if isinstance(test, dict) else {}

    @property
    def warning(self) -> str | None:
        """The trainer's note when the model does not (clearly) beat the majority-class rate."""
        warning = self.metrics.get("warning") if isinstance(self.metrics, dict) else None
        return warning if isinstance(warning, str) else None

    @property
    def left_out(self) -> dict[str, int]:
        """Images the selection left out, by reason."""
        left_out = (self.hyperparameters or {}).get("left_out")
        return left_out if isinstance(left_out, dict) else {}


def _summary_fields(run: TrainingRun) -> dict[str, Any]:
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


@contextmanager
def _reading(db: Session | Engine) -> Iterator[Session]:
    """The caller's session, or a new one on an engine (commands open no sessions)."""
    if isinstance(db, Session):
        yield db
        return
    with Session(db) as session:
        yield session


def list_runs(
    db: Session | Engine, *, task: str | None = None, limit: int | None = None
) -> list[RunSummary]:
    """Recorded runs, newest first."""
    query = select(TrainingRun).order_by(TrainingRun.id.desc())
    if task:
        query = query.where(TrainingRun.task == task)
    if limit:
        query = query.limit(limit)
    with _reading(db) as session:
        return [RunSummary(**_summary_fields(run)) for run in session.scalars(query)]


def run_detail(db: Session | Engine, ref: str | int) -> RunDetail:
    """Everything recorded about one run (by id, or `latest`)."""
    with _reading(db) as session:
        return _run_detail(session, ref)


def _run_detail(session: Session, ref: str | int) -> RunDetail:
    run = resolve_run(session, ref)
    run_id = run.id
    epochs = session.scalars(
        select(TrainingEpoch).where(TrainingEpoch.run_id == run_id).order_by(TrainingEpoch.epoch)
    )
    classes = session.scalars(
        select(TrainingClassMetric)
        .where(TrainingClassMetric.run_id == run_id)
        .order_by(TrainingClassMetric.class_name)
    )
    groups = session.scalars(
        select(TrainingGroupMetric)
        .where(TrainingGroupMetric.run_id == run_id)
        .order_by(TrainingGroupMetric.group_by, TrainingGroupMetric.group_value)
    )
    splits = dict(
        session.execute(
            select(TrainingRunSplit.split, func.count())
            .where(TrainingRunSplit.run_id == run_id)
            .group_by(TrainingRunSplit.split)
        ).all()
    )
    scored = session.scalar(
        select(func.count()).select_from(ImagePrediction).where(ImagePrediction.run_id == run_id)
    )
    evaluations = session.scalars(
        select(ModelEvaluation).where(ModelEvaluation.run_id == run_id).order_by(ModelEvaluation.id)
    ).all()
    return RunDetail(
        **_summary_fields(run),
        model_uri=run.model_uri,
        seed=run.seed,
        started_by=run.started_by,
        finished_at=run.finished_at,
        notes=run.notes,
        hyperparameters=run.hyperparameters,
        metrics=run.metrics,
        confusion_matrix=run.confusion_matrix,
        split_sizes={name: splits.get(name, 0) for name in ("train", "val", "test")},
        images_scored=scored or 0,
        epochs=[
            EpochRow(
                epoch=e.epoch,
                train_loss=e.train_loss,
                val_loss=e.val_loss,
                train_accuracy=e.train_accuracy,
                val_accuracy=e.val_accuracy,
                learning_rate=e.learning_rate,
                seconds=e.seconds,
            )
            for e in epochs
        ],
        per_class=[class_row(c) for c in classes],
        per_group=[group_row(g) for g in groups],
        evaluations=[evaluation_summary(e) for e in evaluations],
    )


def class_row(c: TrainingClassMetric | EvaluationClassMetric) -> ClassRow:
    """A per-class row of a run's test or of an evaluation (the tables share their columns)."""
    return ClassRow(
        class_name=c.class_name,
        precision=c.precision,
        recall=c.recall,
        f1=c.f1,
        support=c.support,
        threshold=c.threshold,
    )


def group_row(g: TrainingGroupMetric | EvaluationGroupMetric) -> GroupRow:
    """A per-group row of a run's test or of an evaluation (the tables share their columns)."""
    return GroupRow(
        group_by=g.group_by,
        group_value=g.group_value,
        support=g.support,
        accuracy=g.accuracy,
        accuracy_ci95=[g.accuracy_low, g.accuracy_high],
        f1_macro=g.f1_macro,
        majority_rate=g.majority_rate,
    )


COMPARED = (
    "model_name",
    "version",
    "task",
    "architecture",
    "status",
    "dataset_size",
    "accuracy",
    "accuracy_ci95",
    "majority_rate",
    "f1_score",
    "f1_ci95",
    "precision_score",
    "recall",
    "best_epoch",
    "epochs_run",
    "training_duration_minutes",
    "split_sizes",
)
COMPARED_OPTIONS = (
    "datasets",
    "verified_only",
    "classes",
    "multi_label",
    "balance_by",
    "model",
    "image_size",
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "val_fraction",
    "test_fraction",
    "split",
    "patience",
    "weights",
)


@dataclass(frozen=True)
class ComparedField:
    field: str
    a: Any
    b: Any
    differs: bool


@dataclass(frozen=True)
class RunComparison:
    a: int
    b: int
    rows: list[ComparedField]
    test_split_overlap: float  # Jaccard overlap of the two runs' test images


def compare_runs(db: Session | Engine, ref_a: str | int, ref_b: str | int) -> RunComparison:
    """Side-by-side values of two runs; `differs` marks what changed. Per-class F1 and the
    overlap of their test splits (runs on different test images are not directly comparable)."""
    with _reading(db) as session:
        return _compare_runs(session, ref_a, ref_b)


def _compare_runs(session: Session, ref_a: str | int, ref_b: str | int) -> RunComparison:
    a, b = _run_detail(session, ref_a), _run_detail(session, ref_b)

    def row(field: str, value_a: Any, value_b: Any) -> ComparedField:
        return ComparedField(field, value_a, value_b, value_a != value_b)

    rows = [row(key, getattr(a, key), getattr(b, key)) for key in COMPARED]
    hp_a, hp_b = a.hyperparameters or {}, b.hyperparameters or {}
    rows += [row(f"option {key}", hp_a.get(key), hp_b.get(key)) for key in COMPARED_OPTIONS]
    f1_a = {c.class_name: c.f1 for c in a.per_class}
    f1_b = {c.class_name: c.f1 for c in b.per_class}
    rows += [
        row(f"f1 {name}", f1_a.get(name), f1_b.get(name)) for name in sorted(set(f1_a) | set(f1_b))
    ]

    def test_ids(run_id: int) -> set[int]:
        return set(
            session.scalars(
                select(TrainingRunSplit.image_id).where(
                    TrainingRunSplit.run_id == run_id, TrainingRunSplit.split == "test"
                )
            )
        )

    ids_a, ids_b = test_ids(a.id), test_ids(b.id)
    overlap = len(ids_a & ids_b) / len(ids_a | ids_b) if ids_a | ids_b else 1.0
    return RunComparison(a=a.id, b=b.id, rows=rows, test_split_overlap=overlap)


@dataclass(frozen=True)
class DeletedRun:
    id: int
    deleted: bool
    model_uri: str | None
    model_deleted: bool


def delete_run(engine: Engine, ref: str | int, storage: Any | None) -> DeletedRun:
    """Delete a run, its detail rows (cascade) and its saved model object (in one transaction:
    the model object goes only once the rows are gone)."""
    with Session(engine) as session, session.begin():
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
    return DeletedRun(id=run_id, deleted=True, model_uri=uri, model_deleted=removed_model)
