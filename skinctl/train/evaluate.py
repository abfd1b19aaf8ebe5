"""Evaluating a fitted model on the held-out test split: overall, per class and per subject
group, against the majority answer of the training split (no database, no files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skinctl.train import dataset as ds
from skinctl.train import metrics as mt
from skinctl.train.fitting import Prepared, predict_probabilities, targets_for
from skinctl.train.options import TrainOptions

# group name in training_group_metrics -> the Example attribute it reads
GROUP_BY = {
    "tone": "skin_tone",  # estimated from the pixels (ITA category), not a Fitzpatrick type
    "fitzpatrick": "fitzpatrick",
    "skin_type": "skin_type",
    "age_range": "age_range",
    "gender": "gender",
    "ethnicity": "ethnicity",
    "dataset": "dataset_source",
}


@dataclass(frozen=True)
class GroupScore:
    """Test metrics within one subject group (one `training_group_metrics` row)."""

    group_by: str
    group_value: str
    support: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    f1_macro: float
    majority_rate: float


@dataclass(frozen=True)
class RunEvaluation:
    """Everything the test split says about a model."""

    test: mt.Evaluation
    groups: list[GroupScore]
    thresholds: dict[str, float] | None  # multi-label: per class, chosen on the val split
    warning: str | None  # set when the model does not (clearly) beat the majority-class rate


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
    majority_index = list(classes).index(Counter(e.label for e in train).most_common(1)[0][0])
    return mt.evaluate(y_true, y_pred, classes, majority_index, seed=seed), y_pred


def group_metrics(
    evaluation_of: Callable[[list[int]], mt.Evaluation], examples: Sequence[ds.Example]
) -> list[GroupScore]:
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
            rows.append(
                GroupScore(
                    group_by=group_by,
                    group_value=value,
                    support=e.n,
                    accuracy=e.accuracy,
                    accuracy_low=e.accuracy_ci[0],
                    accuracy_high=e.accuracy_ci[1],
                    f1_macro=e.f1,
                    majority_rate=e.majority_rate,
                )
            )
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


def evaluate_model(
    model: object, reader: object, prepared: Prepared, options: TrainOptions
) -> RunEvaluation:
    """The model on the test split; multi-label thresholds are chosen on the val split first."""
    classes, parts = prepared.classes, prepared.parts
    thresholds = None
    if options.multi_label:
        val_probs = predict_probabilities(
            model, reader, parts["val"], options.image_size, options.batch_size, options.tta
        )
        thresholds = mt.best_thresholds(targets_for(parts["val"], classes, True), val_probs)
    test_probs = predict_probabilities(
        model, reader, parts["test"], options.image_size, options.batch_size, options.tta
    )
    evaluation, _ = evaluate_split(
        test_probs,
        parts["test"],
        classes,
        parts["train"],
        options.multi_label,
        thresholds,
        options.seed,
    )

    def evaluation_of(indices: list[int]) -> mt.Evaluation:
        sub = [parts["test"][i] for i in indices]
        return evaluate_split(
            test_probs[indices],
            sub,
            classes,
            parts["train"],
            options.multi_label,
            thresholds,
            options.seed,
        )[0]

    return RunEvaluation(
        test=evaluation,
        groups=group_metrics(evaluation_of, parts["test"]),
        thresholds=dict(zip(classes, thresholds.tolist(), strict=True))
        if thresholds is not None
        else None,
        warning=majority_warning(evaluation),
    )
