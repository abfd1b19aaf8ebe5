"""`skinctl train run --task sentiment`: train the review sentiment model and record the run in
the same tables as the image runs (model_training_metrics, training_epochs,
training_class_metrics, training_group_metrics), so `train list/show` show it.

The honest figures: macro-F1 with its 95% bootstrap interval, accuracy with its Wilson
interval against the majority-class rate (about 0.81 positive here), per class, and two
baselines measured on the same test reviews: VADER (a lexicon, no training) and the majority
answer. The model must clear the majority rate with its accuracy interval and beat both
baselines on macro-F1; the run's warning says when it does not.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from skinctl.db.models import (
    RunStatus,
    TrainingClassMetric,
    TrainingGroupMetric,
    TrainingRun,
)
from skinctl.errors import TrainingError, UsageError
from skinctl.progress import ReportProgress, no_progress
from skinctl.reviews.data import CLASSES, Example, load_examples, split_examples
from skinctl.train import metrics as mt
from skinctl.train.fitting import Epoch, epoch_recorder
from skinctl.train.recorder import finish_run, next_version, record_epoch
from skinctl.train.save import save_model

TASK = "sentiment"
VADER_THRESHOLD = 0.05  # VADER's own cut-off on the compound score


@dataclass(frozen=True)
class SentimentOptions:
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 5e-3
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    patience: int = 3
    name: str | None = None
    version: str | None = None
    notes: str | None = None

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise UsageError("--epochs and --batch-size must be >= 1 and --learning-rate > 0.")
        if not 0 < self.val_fraction < 0.5 or not 0 < self.test_fraction < 0.5:
            raise UsageError("--val-fraction and --test-fraction must be between 0 and 0.5.")


def vader_labels(texts: list[str]) -> np.ndarray:
    """VADER's answer per text: compound >= 0.05 positive, <= -0.05 negative, else neutral."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        compound = analyzer.polarity_scores(text)["compound"]
        out[i] = CLASSES.index(
            "positive"
            if compound >= VADER_THRESHOLD
            else "negative"
            if compound <= -VADER_THRESHOLD
            else "neutral"
        )
    return out


def _baseline(e: mt.Evaluation) -> dict[str, Any]:
    return {
        "accuracy": e.accuracy,
        "accuracy_ci95": list(e.accuracy_ci),
        "f1_macro": e.f1,
        "f1_macro_ci95": list(e.f1_ci),
    }


def _warning(model: mt.Evaluation, vader: mt.Evaluation) -> str | None:
    problems = []
    if not model.beats_majority:
        problems.append(
            f"its accuracy interval {model.accuracy_ci[0]:.3f}-{model.accuracy_ci[1]:.3f} does not "
            f"clear the majority-class rate {model.majority_rate:.3f} (always {model.majority_class!r})"
        )
    if model.f1 <= vader.f1:
        problems.append(f"its macro-F1 {model.f1:.3f} does not beat VADER's {vader.f1:.3f}")
    if model.f1 <= model.majority_f1:
        problems.append(
            f"its macro-F1 {model.f1:.3f} does not beat the majority answer's {model.majority_f1:.3f}"
        )
    return ("The sentiment model falls short: " + "; ".join(problems) + ".") if problems else None


def train_sentiment(
    engine: Engine,
    storage: Any,
    options: SentimentOptions,
    *,
    user: str | None = None,
    report: ReportProgress = no_progress,
) -> int:
    """Train, evaluate against the baselines, save the model to the store (models/run-<id>.keras)
    and record the run. Returns the run id."""
    from skinctl.reviews.model import (
        ARCHITECTURE,
        MAX_TOKENS,
        build,
        dataset,
        keras_module,
        predict,
    )

    options.check()
    started = time.monotonic()
    examples = load_examples(engine)
    split = split_examples(
        examples,
        seed=options.seed,
        val_fraction=options.val_fraction,
        test_fraction=options.test_fraction,
    )
    if not split.test or not split.val or not split.train:
        raise UsageError(
            f"Too few products to split by product: {split.sizes()}.",
            hint="Load more reviews (`skinctl ingest reviews sephora`).",
        )
    counts = {
        name: dict(Counter(CLASSES[e.label] for e in rows))
        for name, rows in (("train", split.train), ("val", split.val), ("test", split.test))
    }
    name = options.name or f"{TASK}-{ARCHITECTURE}"
    with Session(engine) as session, session.begin():
        run = TrainingRun(
            model_name=name,
            version=options.version or next_version(session, name),
            dataset_size=len(split.train) + len(split.val) + len(split.test),
            hyperparameters={
                **asdict(options),
                "task": TASK,
                "model": ARCHITECTURE,
                "classes": CLASSES,
                "max_tokens": MAX_TOKENS,
                "split": "product and author",
                "split_sizes": split.sizes(),
                "class_counts": counts,
                "left_out": {"author on both sides": split.dropped_shared_authors},
                "labels": "stars: 1-2 negative, 3 neutral, 4-5 positive",
            },
            notes=options.notes,
            task=TASK,
            architecture=ARCHITECTURE,
            status=RunStatus.running,
            seed=options.seed,
            started_by=user,
        )
        session.add(run)
        session.flush()
        run_id = run.id

    def on_epoch(epoch: Epoch) -> None:
        record_epoch(engine, run_id, epoch)
        report("epochs", epoch.epoch, options.epochs)

    try:
        keras = keras_module()
        keras.utils.set_random_seed(options.seed)
        train_texts = [e.text for e in split.train]
        y_train = np.array([e.label for e in split.train])
        model = build(train_texts, len(CLASSES), learning_rate=options.learning_rate)
        # Balanced class weights: without them the model learns the 81% "positive" answer.
        class_weight = np.array(
            [
                len(y_train) / (len(CLASSES) * max(1, int((y_train == i).sum())))
                for i in range(len(CLASSES))
            ]
        )
        history = model.fit(
            dataset(
                train_texts,
                y_train,
                class_weight[y_train],
                batch_size=options.batch_size,
                shuffle_seed=options.seed,
            ),
            validation_data=dataset(
                [e.text for e in split.val], [e.label for e in split.val], batch_size=1024
            ),
            epochs=options.epochs,
            verbose=0,
            callbacks=[
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=options.patience, restore_best_weights=True
                ),
                epoch_recorder(keras, len(split.train), on_epoch, unit="reviews"),
            ],
        )
        val_losses = history.history.get("val_loss", [])
        best_epoch = int(np.argmin(val_losses)) + 1 if val_losses else None
        report("evaluate", 0, 1)
        _record(engine, storage, run_id, model, split, best_epoch, len(val_losses), predict)
        report("evaluate", 1, 1)
        finish_run(engine, run_id, started, status=RunStatus.finished, note=None)
    except KeyboardInterrupt:
        finish_run(
            engine, run_id, started, status=RunStatus.interrupted, note="interrupted (Ctrl-C)"
        )
        raise
    except Exception as error:
        finish_run(engine, run_id, started, status=RunStatus.failed, note=f"failed: {error}")
        raise TrainingError(
            f"Sentiment run {run_id} failed: {error}", hint="Run with -v for the traceback."
        ) from error
    return run_id


def _evaluate(
    y_true: np.ndarray, y_pred: np.ndarray, majority_index: int, seed: int
) -> mt.Evaluation:
    return mt.evaluate(y_true, y_pred, CLASSES, majority_index, seed=seed)


def _record(
    engine: Engine,
    storage: Any,
    run_id: int,
    model: Any,
    split: Any,
    best_epoch: int | None,
    epochs_run: int,
    predict: Any,
) -> None:
    import tempfile
    from pathlib import Path

    test: list[Example] = split.test
    texts = [e.text for e in test]
    y_true = np.array([e.label for e in test])
    majority_index = Counter(e.label for e in split.train).most_common(1)[0][0]
    probabilities = predict(model, texts)
    y_pred = probabilities.argmax(axis=1)
    evaluation = _evaluate(y_true, y_pred, majority_index, 0)
    vader = _evaluate(y_true, vader_labels(texts), majority_index, 0)
    majority = _evaluate(y_true, np.full_like(y_true, majority_index), majority_index, 0)
    groups = []
    for skin_type in sorted({e.skin_type for e in test if e.skin_type}):
        idx = [i for i, e in enumerate(test) if e.skin_type == skin_type]
        e = _evaluate(y_true[idx], y_pred[idx], majority_index, 0)
        groups.append(
            TrainingGroupMetric(
                run_id=run_id,
                group_by="skin_type",
                group_value=skin_type,
                support=e.n,
                accuracy=e.accuracy,
                accuracy_low=e.accuracy_ci[0],
                accuracy_high=e.accuracy_ci[1],
                f1_macro=e.f1,
                majority_rate=e.majority_rate,
            )
        )
    with tempfile.TemporaryDirectory() as folder:
        saved = save_model(model, storage, run_id, Path(folder))
    with Session(engine) as session, session.begin():
        run = session.get_one(TrainingRun, run_id)
        run.accuracy, run.precision_score, run.recall, run.f1_score = (
            evaluation.accuracy,
            evaluation.precision,
            evaluation.recall,
            evaluation.f1,
        )
        run.majority_rate = evaluation.majority_rate
        run.best_epoch, run.epochs_run = best_epoch, epochs_run
        run.model_uri = saved.uri
        run.confusion_matrix = {
            "classes": CLASSES,
            "matrix": evaluation.matrix.tolist(),
            "rows": "true class",
            "columns": "predicted class",
        }
        run.metrics = {
            "test": evaluation.summary(),
            "baselines": {"vader": _baseline(vader), "majority": _baseline(majority)},
            "beats_vader": evaluation.f1 > vader.f1,
            "beats_majority_f1": evaluation.f1 > majority.f1,
            "dropped_shared_authors": split.dropped_shared_authors,
            "warning": _warning(evaluation, vader),
            "model_sha256": saved.sha256,
        }
        for row in evaluation.per_class:
            session.add(TrainingClassMetric(run_id=run_id, **row))
        session.add_all(groups)
