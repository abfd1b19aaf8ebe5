"""`skinctl train run`: select, split, fit, evaluate on the held-out test split, record.

The run row is written first (status running) with the split of every image, each epoch is
committed as it ends, and the row is finished, interrupted (Ctrl-C: the best checkpoint so far
is kept and evaluated) or failed at the end.
"""

from __future__ import annotations

import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    TrainingClassMetric,
    TrainingEpoch,
    TrainingGroupMetric,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.errors import SkinctlError, TrainingError, UsageError
from skinctl.train import dataset as ds
from skinctl.train import metrics as mt
from skinctl.train.architectures import ARCHITECTURES

Progress = Callable[[str], None]
GROUP_BY = {"fitzpatrick": "fitzpatrick", "skin_type": "skin_type", "age_range": "age_range",
            "dataset": "dataset_source"}


@dataclass
class TrainOptions:
    """Every option of `train run`; all of them are recorded in the run's hyperparameters."""

    task: str
    datasets: list[str] = field(default_factory=list)
    verified_only: bool = False
    classes: list[str] | None = None
    multi_label: bool = False
    balance_by: str | None = None
    model: str = "small-cnn"
    image_size: int = 128
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split: str = "group"  # group | dataset (the source's own folders, may leak)
    patience: int = 5
    name: str | None = None
    version: str | None = None
    weights: str | None = None
    notes: str | None = None

    def check(self) -> None:
        if self.model not in ARCHITECTURES:
            raise UsageError(f"Unknown model {self.model!r}.", hint=f"Use one of: {', '.join(ARCHITECTURES)}.")
        if self.split not in ("group", "dataset"):
            raise UsageError(f"--split {self.split!r}: use group or dataset.")
        if self.image_size < 16 or self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise UsageError("--image-size must be >= 16, --epochs and --batch-size >= 1, --learning-rate > 0.")
        if self.multi_label and self.task == "severity":
            raise UsageError("--multi-label does not apply to --task severity (one level per image).")
        if self.model in ("mobilenet-v3-small",) and self.image_size < 32:
            raise UsageError(f"{self.model} needs --image-size 32 or more.")


@dataclass
class Prepared:
    """A selection split into train/val/test, with targets and weights."""

    selection: ds.Selection
    split_of: dict[int, str]
    groups: dict[int, int]
    parts: dict[str, list[ds.Example]]

    @property
    def classes(self) -> list[str]:
        return self.selection.classes


def targets_for(examples: Sequence[ds.Example], classes: Sequence[str], multi_label: bool) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    if multi_label:
        out = np.zeros((len(examples), len(classes)), dtype=np.float32)
        for row, example in enumerate(examples):
            for label in example.labels:
                out[row, index[label]] = 1.0
        return out
    return np.array([index[e.label] for e in examples], dtype=np.int32)


def prepare(session: Session, options: TrainOptions) -> Prepared:
    selection = ds.select_examples(
        session, options.task, datasets=options.datasets, verified_only=options.verified_only,
        classes=options.classes, multi_label=options.multi_label,
    )
    pairs = ds.duplicate_pairs(session, (e.image_id for e in selection.examples))
    groups = ds.link_groups(selection.examples, pairs)
    if options.split == "dataset":
        split_of = ds.folder_split(selection.examples)
    else:
        split_of = ds.group_split(
            selection.examples, groups, val_fraction=options.val_fraction,
            test_fraction=options.test_fraction, seed=options.seed,
        )
    parts: dict[str, list[ds.Example]] = {"train": [], "val": [], "test": []}
    for example in selection.examples:
        parts[split_of[example.image_id]].append(example)
    empty = [name for name, rows in parts.items() if not rows]
    if empty:
        raise TrainingError(
            f"The {', '.join(empty)} split is empty ({len(selection.examples)} images in "
            f"{len(groups and set(groups.values()))} linked groups).",
            hint="Select more images, or change --val-fraction / --test-fraction.",
        )
    return Prepared(selection, split_of, groups, parts)


def library_versions() -> dict[str, str]:
    from skinctl.train.pipeline import tensorflow

    tf = tensorflow()
    import keras

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# --- fitting ---------------------------------------------------------------------------------


class _EpochRecorder:
    """Keras callback factory: commit one training_epochs row per epoch and report progress."""

    @staticmethod
    def make(keras: Any, engine: Engine | None, run_id: int | None, epochs: int,
             n_train: int, progress: Progress | None) -> Any:
        class EpochRecorder(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.history: list[dict[str, Any]] = []
                self._start = 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self._start = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = {k: float(v) for k, v in (logs or {}).items()}
                seconds = time.monotonic() - self._start
                lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                row = {
                    "epoch": epoch + 1,
                    "train_loss": logs.get("loss"),
                    "val_loss": logs.get("val_loss"),
                    "train_accuracy": logs.get("accuracy", logs.get("binary_accuracy")),
                    "val_accuracy": logs.get("val_accuracy", logs.get("val_binary_accuracy")),
                    "learning_rate": lr,
                    "seconds": seconds,
                    "metrics": {**logs, "train_images_per_second": n_train / seconds if seconds else None},
                }
                self.history.append(row)
                if engine is not None and run_id is not None:
                    with Session(engine) as session, session.begin():
                        session.add(TrainingEpoch(run_id=run_id, **row))
                if progress:
                    progress(
                        f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f} "
                        f"acc {row['train_accuracy'] or 0:.3f}  val_loss {row['val_loss'] or 0:.4f} "
                        f"val_acc {row['val_accuracy'] or 0:.3f}  ({n_train / seconds:.0f} img/s, "
                        f"at most {(epochs - epoch - 1) * seconds / 60:.1f} min left)"
                    )

        return EpochRecorder()


class _BestWeights:
    """Keras callback factory: a copy of the weights of the epoch with the lowest val loss
    (in memory: cheaper than writing a checkpoint file every time it improves)."""

    @staticmethod
    def make(keras: Any) -> Any:
        class BestWeights(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.weights: list[Any] | None = None
                self.epoch: int | None = None
                self.loss = np.inf

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                loss = float((logs or {}).get("val_loss", np.nan))
                if self.weights is None or loss < self.loss:
                    self.loss, self.epoch, self.weights = loss, epoch + 1, self.model.get_weights()

        return BestWeights()


@dataclass
class FitResult:
    model: Any
    history: list[dict[str, Any]]
    best_epoch: int | None
    interrupted: bool


def fit(
    reader: Any,
    options: TrainOptions,
    classes: Sequence[str],
    train: Sequence[ds.Example],
    val: Sequence[ds.Example],
    *,
    engine: Engine | None = None,
    run_id: int | None = None,
    progress: Progress | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> FitResult:
    """Train one model with early stopping on validation loss; the best epoch is the one kept.
    Ctrl-C stops after the current step; the best checkpoint so far is returned."""
    from skinctl.train.architectures import build_model, distribution_strategy
    from skinctl.train.pipeline import make_dataset, tensorflow

    tf = tensorflow()
    import keras

    keras.utils.set_random_seed(options.seed)
    train_weights, _ = ds.sample_weights(train, classes, options.balance_by)
    y_train = targets_for(train, classes, options.multi_label)
    y_val = targets_for(val, classes, options.multi_label)
    train_data = make_dataset(
        reader, [e.image_url for e in train], options.image_size, options.batch_size,
        targets=y_train, weights=np.asarray(train_weights), training=True, seed=options.seed,
    )
    val_data = make_dataset(
        reader, [e.image_url for e in val], options.image_size, options.batch_size, targets=y_val
    )
    strategy = distribution_strategy(tf)
    with strategy.scope():
        model = build_model(
            options.model, options.image_size, len(classes),
            multi_label=options.multi_label, weights=options.weights,
        )
        if options.multi_label:
            loss, metric = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
        else:
            loss, metric = "sparse_categorical_crossentropy", "accuracy"
        model.compile(
            optimizer=keras.optimizers.Adam(options.learning_rate), loss=loss, metrics=[metric],
            jit_compile=False,  # XLA compiles for seconds per model; no gain for small CPU models
        )
    recorder = _EpochRecorder.make(keras, engine, run_id, options.epochs, len(train), progress)
    best = _BestWeights.make(keras)
    callbacks = [
        recorder,
        best,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience),
        *extra_callbacks,
    ]
    interrupted = False
    try:
        model.fit(train_data, validation_data=val_data, epochs=options.epochs,
                  callbacks=callbacks, verbose=0, shuffle=False)  # tf.data shuffles
    except KeyboardInterrupt:
        interrupted = True
    # Keep the best epoch, whether training ended, stopped early or was interrupted mid-epoch.
    if best.weights is not None:
        model.set_weights(best.weights)
    return FitResult(model, recorder.history, best.epoch, interrupted)


def predict_probabilities(model: Any, reader: Any, examples: Sequence[ds.Example],
                          image_size: int, batch_size: int) -> np.ndarray:
    from skinctl.train.pipeline import make_dataset

    data = make_dataset(reader, [e.image_url for e in examples], image_size, batch_size, cache=False)
    return np.asarray(model.predict(data, verbose=0), dtype=np.float64)


# --- the recorded run ------------------------------------------------------------------------


def _next_version(session: Session, name: str) -> str:
    """One more than the highest numeric version of this model name."""
    versions = session.scalars(select(TrainingRun.version).where(TrainingRun.model_name == name))
    numbers = [int(v) for v in versions if v and v.isdigit()]
    return str(max(numbers, default=0) + 1)


def evaluate_split(
    probabilities: np.ndarray,
    examples: Sequence[ds.Example],
    classes: Sequence[str],
    train: Sequence[ds.Example],
    multi_label: bool,
    thresholds: np.ndarray | None,
    seed: int,
) -> tuple[mt.Evaluation, np.ndarray]:
    """Evaluation of predictions on a split against the training split's majority answer;
    also returns the predictions (class indices, or a boolean matrix for multi-label)."""
    if multi_label:
        assert thresholds is not None
        y_true = targets_for(examples, classes, True).astype(bool)
        y_pred = probabilities >= thresholds[None, :]
        common = Counter(tuple(sorted(e.labels)) for e in train).most_common(1)[0][0]
        majority = np.array([c in common for c in classes])
        return mt.evaluate_multilabel(y_true, y_pred, classes, majority, seed=seed), y_pred
    y_true = targets_for(examples, classes, False)
    y_pred = probabilities.argmax(axis=1)
    majority_index = classes.index(Counter(e.label for e in train).most_common(1)[0][0])
    return mt.evaluate(y_true, y_pred, classes, majority_index, seed=seed), y_pred


def group_metrics(
    evaluation_of: Callable[[list[int]], mt.Evaluation], examples: Sequence[ds.Example]
) -> list[dict[str, Any]]:
    """Test metrics within each subject group that has metadata (and per source dataset)."""
    rows = []
    for group_by, attr in GROUP_BY.items():
        values: dict[str, list[int]] = {}
        for i, example in enumerate(examples):
            value = getattr(example, attr)
            if value is not None:
                values.setdefault(str(value), []).append(i)
        if group_by == "dataset" and len(values) < 2:
            continue  # one dataset: the group is the whole test split
        for value, indices in sorted(values.items()):
            e = evaluation_of(indices)
            rows.append({
                "group_by": group_by, "group_value": value, "support": e.n,
                "accuracy": e.accuracy, "accuracy_low": e.accuracy_ci[0],
                "accuracy_high": e.accuracy_ci[1], "f1_macro": e.f1, "majority_rate": e.majority_rate,
            })
    return rows


def majority_warning(e: mt.Evaluation) -> str | None:
    if e.accuracy <= e.majority_rate:
        return (
            f"The model does NOT beat the majority-class rate: test accuracy {e.accuracy:.3f} vs "
            f"{e.majority_rate:.3f} for always answering {e.majority_class!r}. It has learned "
            "nothing useful on this split."
        )
    if e.accuracy_ci[0] <= e.majority_rate:
        return (
            f"The model does not clearly beat the majority-class rate: test accuracy "
            f"{e.accuracy:.3f} (95% CI {e.accuracy_ci[0]:.3f}-{e.accuracy_ci[1]:.3f}) includes "
            f"{e.majority_rate:.3f} (always {e.majority_class!r})."
        )
    return None


def run_training(
    engine: Engine,
    storage: Any,
    options: TrainOptions,
    *,
    home: Path,
    user: str | None = None,
    progress: Progress | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train and record one run; returns the summary `train show` prints."""
    from skinctl.train.pipeline import ByteReader

    options.check()
    started = time.monotonic()
    with Session(engine) as session:
        prepared = prepare(session, options)
    selection, parts, classes = prepared.selection, prepared.parts, prepared.classes
    split_sizes = {name: len(rows) for name, rows in parts.items()}
    if progress:
        left = ", ".join(f"{n} {reason}" for reason, n in selection.left_out.items())
        progress(
            f"{len(selection.examples)} images, {len(classes)} classes, "
            f"{len(set(prepared.groups.values()))} linked groups; split {split_sizes}"
            + (f"; left out: {left}" if left else "")
        )

    name = options.name or f"{options.task}-{options.model}"
    hyperparameters = {
        **asdict(options),
        "classes_option": options.classes,  # what --classes asked for (None: all)
        "classes": classes,  # the class list, in output order
        "split_sizes": split_sizes,
        "class_counts": {name_: dict(Counter(lbl for e in rows for lbl in e.labels)) for name_, rows in parts.items()},
        "left_out": selection.left_out,
        "linked_groups": len(set(prepared.groups.values())),
        "library_versions": library_versions(),
    }
    with Session(engine) as session, session.begin():
        run = TrainingRun(
            model_name=name,
            version=options.version or _next_version(session, name),
            dataset_size=len(selection.examples),
            hyperparameters=hyperparameters,
            notes=options.notes,
            task=options.task,
            architecture=options.model,
            status="running",
            seed=options.seed,
            started_by=user,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        session.execute(
            insert(TrainingRunSplit),
            [
                {"run_id": run_id, "image_id": e.image_id, "split": prepared.split_of[e.image_id],
                 "split_group": prepared.groups[e.image_id]}
                for e in selection.examples
            ],
        )

    run_dir = home / "runs" / f"run-{run_id}"
    reader = ByteReader(storage)
    try:
        result = fit(
            reader, options, classes, parts["train"], parts["val"],
            engine=engine, run_id=run_id,
            progress=progress, extra_callbacks=extra_callbacks,
        )
        if not result.history:
            _finish(engine, run_id, started, status="interrupted" if result.interrupted else "failed",
                    note="stopped before the first epoch ended; nothing to keep")
            return run_summary(engine, run_id)
        summary_status = "interrupted" if result.interrupted else "finished"
        if progress:
            progress("evaluating the best epoch on the test split ...")
        record_evaluation(engine, storage, run_id, prepared, options, result, reader, run_dir)
        _finish(engine, run_id, started, status=summary_status,
                note="interrupted (Ctrl-C): the best checkpoint so far was kept" if result.interrupted else None)
    except KeyboardInterrupt:
        _finish(engine, run_id, started, status="interrupted", note="interrupted during evaluation")
        raise
    except Exception as error:
        if not isinstance(error, SkinctlError) and isinstance(reader.first_error, SkinctlError):
            error = reader.first_error  # the plain cause, not TensorFlow's wrapping of it
        _finish(engine, run_id, started, status="failed", note=f"failed: {error}")
        if isinstance(error, SkinctlError):
            raise error from None
        raise TrainingError(f"Training run {run_id} failed: {error}", hint="Run with -v for the traceback.") from error
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return run_summary(engine, run_id)


def record_evaluation(
    engine: Engine, storage: Any, run_id: int, prepared: Prepared, options: TrainOptions,
    result: FitResult, reader: Any, run_dir: Path,
) -> None:
    classes, parts = prepared.classes, prepared.parts
    model = result.model
    thresholds = None
    val_accuracy = None
    if options.multi_label:
        val_probs = predict_probabilities(model, reader, parts["val"], options.image_size, options.batch_size)
        thresholds = mt.best_thresholds(targets_for(parts["val"], classes, True), val_probs)
    test_probs = predict_probabilities(model, reader, parts["test"], options.image_size, options.batch_size)
    evaluation, _ = evaluate_split(test_probs, parts["test"], classes, parts["train"],
                                   options.multi_label, thresholds, options.seed)

    def evaluation_of(indices: list[int]) -> mt.Evaluation:
        sub = [parts["test"][i] for i in indices]
        return evaluate_split(test_probs[indices], sub, classes, parts["train"],
                              options.multi_label, thresholds, options.seed)[0]

    groups = group_metrics(evaluation_of, parts["test"])
    if result.best_epoch is not None:
        val_accuracy = next(h["val_accuracy"] for h in result.history if h["epoch"] == result.best_epoch)

    # The model goes to the image store next to the images: models/run-<id>.keras
    run_dir.mkdir(parents=True, exist_ok=True)
    model_file = run_dir / f"run-{run_id}.keras"
    model.save(model_file)
    key = f"models/run-{run_id}.keras"
    storage.put(key, model_file.read_bytes())
    model_uri = storage.url_for(key)

    with Session(engine) as session, session.begin():
        run = session.get_one(TrainingRun, run_id)
        run.accuracy = evaluation.accuracy
        run.precision_score = evaluation.precision
        run.recall = evaluation.recall
        run.f1_score = evaluation.f1
        run.majority_rate = evaluation.majority_rate
        run.best_epoch = result.best_epoch
        run.epochs_run = len(result.history)
        run.model_uri = model_uri
        run.confusion_matrix = {
            "classes": classes,
            "matrix": evaluation.matrix.tolist(),
            "rows": "true class", "columns": "predicted class",
            **({"kind": "multi-label co-occurrence"} if options.multi_label else {}),
        }
        run.metrics = {
            "test": evaluation.summary(),
            "val_accuracy_best_epoch": val_accuracy,
            "thresholds": dict(zip(classes, thresholds.tolist(), strict=True)) if thresholds is not None else None,
            "warning": majority_warning(evaluation),
        }
        for row in evaluation.per_class:
            threshold = None
            if thresholds is not None:
                threshold = float(thresholds[classes.index(row["class_name"])])
            session.add(TrainingClassMetric(run_id=run_id, threshold=threshold, **row))
        for row in groups:
            session.add(TrainingGroupMetric(run_id=run_id, **row))


def _finish(engine: Engine, run_id: int, started: float, *, status: str, note: str | None) -> None:
    seconds = time.monotonic() - started
    with Session(engine) as session, session.begin():
        run = session.get_one(TrainingRun, run_id)
        run.status = status
        run.finished_at = datetime.now()
        run.training_duration_minutes = round(seconds / 60)
        run.metrics = {**(run.metrics or {}), "duration_seconds": round(seconds, 1)}
        if note:
            run.notes = f"{run.notes}\n{note}" if run.notes else note


def run_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    from skinctl.train.records import run_detail

    with Session(engine) as session:
        return run_detail(session, run_id)
