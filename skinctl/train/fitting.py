"""Fitting one model: the selection split into train/val/test (`prepare`), Keras training with
early stopping that keeps the best epoch (`fit`), and class probabilities (`predict_probabilities`).

Nothing here writes to the database: each finished epoch goes to an `on_epoch` hook (the
runner records it), so K-fold scoring can fit models that are never recorded.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from skinctl.errors import TrainingError
from skinctl.train import dataset as ds
from skinctl.train.choices import Augment, Schedule, SplitMethod
from skinctl.train.options import TrainOptions


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


def targets_for(
    examples: Sequence[ds.Example], classes: Sequence[str], multi_label: bool
) -> np.ndarray:
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
        session,
        options.task,
        datasets=options.datasets,
        verified_only=options.verified_only,
        classes=options.classes,
        multi_label=options.multi_label,
        min_images=options.min_images,
    )
    pairs = ds.duplicate_pairs(session, (e.image_id for e in selection.examples))
    groups = ds.link_groups(selection.examples, pairs)
    if options.split == SplitMethod.dataset:
        split_of = ds.folder_split(selection.examples)
    else:
        split_of = ds.group_split(
            selection.examples,
            groups,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
            seed=options.seed,
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

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Epoch:
    """One finished epoch, as `training_epochs` records it."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    metrics: dict[str, float | None] = field(default_factory=dict)


OnEpoch = Callable[[Epoch], None]


def epoch_recorder(keras: Any, n_train: int, on_epoch: OnEpoch | None, unit: str = "images") -> Any:
    """A Keras callback that keeps every epoch's figures and hands each to `on_epoch`
    (`unit`: what the training examples are, for the per-second rate it records)."""

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[Epoch] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            seconds = time.monotonic() - self._start
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row = Epoch(
                epoch=epoch + 1,
                train_loss=logs.get("loss"),
                val_loss=logs.get("val_loss"),
                train_accuracy=logs.get("accuracy", logs.get("binary_accuracy")),
                val_accuracy=logs.get("val_accuracy", logs.get("val_binary_accuracy")),
                learning_rate=lr,
                seconds=seconds,
                metrics={
                    **logs,
                    f"train_{unit}_per_second": n_train / seconds if seconds else None,
                },
            )
            self.history.append(row)
            if on_epoch is not None:
                on_epoch(row)

    return EpochRecorder()


def _best_weights(keras: Any) -> Any:
    """A Keras callback that keeps a copy of the weights of the epoch with the lowest val loss
    (in memory: cheaper than writing a checkpoint file every time it improves)."""

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
    history: list[Epoch]
    best_epoch: int | None
    interrupted: bool

    @property
    def best_val_accuracy(self) -> float | None:
        if self.best_epoch is None:
            return None
        return next(e.val_accuracy for e in self.history if e.epoch == self.best_epoch)


def fit(
    reader: Any,
    options: TrainOptions,
    classes: Sequence[str],
    train: Sequence[ds.Example],
    val: Sequence[ds.Example],
    *,
    on_epoch: OnEpoch | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> FitResult:
    """Train one model with early stopping on validation loss; the best epoch is the one kept.
    Ctrl-C stops after the current step; the best checkpoint so far is returned."""
    from skinctl.train.architectures import build_model, distribution_strategy
    from skinctl.train.multiworker import prepare_multi_worker_fit
    from skinctl.train.pipeline import make_dataset, tensorflow

    tf = tensorflow()
    import keras

    # first: MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs
    strategy = distribution_strategy(tf)
    keras.utils.set_random_seed(options.seed)
    train_weights, _ = ds.sample_weights(train, classes, options.balance_by)
    y_train = targets_for(train, classes, options.multi_label)
    y_val = targets_for(val, classes, options.multi_label)
    # Label smoothing and mixup need one-hot targets (single-label runs only).
    one_hot = not options.multi_label and (options.label_smoothing > 0 or options.mixup > 0)
    if one_hot:
        eye = np.eye(len(classes), dtype=np.float32)
        y_train, y_val = eye[y_train], eye[y_val]
    train_data = make_dataset(
        reader,
        [e.image_url for e in train],
        options.image_size,
        options.batch_size,
        targets=y_train,
        weights=np.asarray(train_weights),
        training=True,
        seed=options.seed,
        strong=options.augment == Augment.strong,
        mixup=options.mixup if one_hot else 0.0,
    )
    val_data = make_dataset(
        reader, [e.image_url for e in val], options.image_size, options.batch_size, targets=y_val
    )
    with strategy.scope():
        model = build_model(
            options.model,
            options.image_size,
            len(classes),
            multi_label=options.multi_label,
            weights=options.weights,
        )
        if options.multi_label:
            loss, metric = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
        elif one_hot:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing)
            metric = keras.metrics.CategoricalAccuracy(name="accuracy")
        else:
            loss, metric = "sparse_categorical_crossentropy", "accuracy"
        learning_rate: Any = options.learning_rate
        if options.schedule == Schedule.cosine:
            steps = max(1, -(-len(train) // options.batch_size)) * options.epochs
            learning_rate = keras.optimizers.schedules.CosineDecay(options.learning_rate, steps)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=loss,
            metrics=[metric],
            jit_compile=False,  # XLA compiles for seconds per model; no gain for small CPU models
        )
    prepare_multi_worker_fit(tf, strategy, model, train_data)
    recorder = epoch_recorder(keras, len(train), on_epoch)
    best = _best_weights(keras)
    callbacks = [
        recorder,
        best,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience),
        *extra_callbacks,
    ]
    interrupted = False
    try:
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=options.epochs,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )  # tf.data shuffles
    except KeyboardInterrupt:
        interrupted = True
    # Keep the best epoch, whether training ended, stopped early or was interrupted mid-epoch.
    if best.weights is not None:
        model.set_weights(best.weights)
    return FitResult(model, recorder.history, best.epoch, interrupted)


def predict_probabilities(
    model: Any,
    reader: Any,
    examples: Sequence[ds.Example],
    image_size: int,
    batch_size: int,
    tta: bool = False,
) -> np.ndarray:
    """Class probabilities; with `tta`, the mean of the image's and its mirror's."""
    from skinctl.train.pipeline import make_dataset

    urls = [e.image_url for e in examples]
    data = make_dataset(reader, urls, image_size, batch_size, cache=False)
    probabilities = np.asarray(model.predict(data, verbose=0), dtype=np.float64)
    if tta:
        mirrored = make_dataset(reader, urls, image_size, batch_size, cache=False, mirror=True)
        probabilities = (probabilities + model.predict(mirrored, verbose=0)) / 2
    return probabilities
