"""Honest evaluation: every accuracy and F1 with its majority-class rate and a 95% interval.

Plain numpy (no TensorFlow), so the numbers can be tested and recomputed cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sane at small n and near 0 or 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """precision, recall, f1, support per class (0 where undefined, as scikit-learn does)."""
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1, support


def macro_f1_batch(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Macro F1 of many resamples at once: y_true, y_pred of shape (B, n). Classes absent
    from a resample's truth and predictions are left out of its mean."""
    b = y_true.shape[0]
    tp = np.zeros((b, k))
    true_count = np.zeros((b, k))
    pred_count = np.zeros((b, k))
    rows = np.repeat(np.arange(b), y_true.shape[1])
    np.add.at(true_count, (rows, y_true.ravel()), 1)
    np.add.at(pred_count, (rows, y_pred.ravel()), 1)
    hits = (y_true == y_pred).ravel()
    np.add.at(tp, (rows[hits], y_true.ravel()[hits]), 1)
    denominator = true_count + pred_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    present = denominator > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_interval(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of macro F1 (resampling test images)."""
    n = len(y_true)
    if n == 0:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    scores = []
    for start in range(0, resamples, 200):  # bounded memory
        index = rng.integers(0, n, size=(min(200, resamples - start), n))
        scores.append(macro_f1_batch(y_true[index], y_pred[index], k))
    values = np.concatenate(scores)
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


@dataclass
class Evaluation:
    """Single-label evaluation on one split."""

    classes: list[str]
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    precision: float  # macro
    recall: float  # macro
    f1: float  # macro
    f1_ci: tuple[float, float]
    balanced_accuracy: float
    majority_class: str
    majority_rate: float  # accuracy of always answering the training split's commonest class
    majority_rate_ci: tuple[float, float]
    majority_f1: float
    matrix: np.ndarray
    per_class: list[dict]

    @property
    def beats_majority(self) -> bool:
        """The accuracy interval lies above the majority rate."""
        return self.accuracy_ci[0] > self.majority_rate

    def summary(self) -> dict:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "accuracy_ci95": list(self.accuracy_ci),
            "precision_macro": self.precision,
            "recall_macro": self.recall,
            "f1_macro": self.f1,
            "f1_macro_ci95": list(self.f1_ci),
            "balanced_accuracy": self.balanced_accuracy,
            "majority_class": self.majority_class,
            "majority_rate": self.majority_rate,
            "majority_rate_ci95": list(self.majority_rate_ci),
            "majority_f1_macro": self.majority_f1,
            "beats_majority": self.beats_majority,
        }


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[str],
    majority_index: int,
    *,
    seed: int = 0,
) -> Evaluation:
    k = len(classes)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    matrix = confusion(y_true, y_pred, k)
    precision, recall, f1, support = per_class(matrix)
    present = support > 0
    correct = int((y_true == y_pred).sum())
    majority_hits = int((y_true == majority_index).sum())
    majority_pred = np.full_like(y_true, majority_index)
    _, _, majority_f1, _ = per_class(confusion(y_true, majority_pred, k))
    return Evaluation(
        classes=list(classes),
        n=n,
        accuracy=correct / n if n else 0.0,
        accuracy_ci=wilson_interval(correct, n),
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        f1=float(f1.mean()),
        f1_ci=bootstrap_interval(y_true, y_pred, k, seed=seed),
        balanced_accuracy=float(recall[present].mean()) if present.any() else 0.0,
        majority_class=classes[majority_index],
        majority_rate=majority_hits / n if n else 0.0,
        majority_rate_ci=wilson_interval(majority_hits, n),
        majority_f1=float(majority_f1.mean()),
        matrix=matrix,
        per_class=_per_class(classes, precision, recall, f1, support),
    )


# --- multi-label ------------------------------------------------------------------------------


def best_thresholds(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per class, the threshold on the validation split that maximises that class's F1
    (0.5 where the class has no positive validation image)."""
    k = y_true.shape[1]
    thresholds = np.full(k, 0.5)
    grid = np.linspace(0.05, 0.95, 19)
    for j in range(k):
        if y_true[:, j].sum() == 0:
            continue
        f1s = []
        for t in grid:
            predicted = scores[:, j] >= t
            tp = float((predicted & (y_true[:, j] == 1)).sum())
            denominator = predicted.sum() + y_true[:, j].sum()
            f1s.append(2 * tp / denominator if denominator else 0.0)
        thresholds[j] = grid[int(np.argmax(f1s))]
    return thresholds


def _multilabel_prf(
    y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    k = y_true.shape[1]
    tp = (y_true & y_pred).sum(axis=0).astype(float)
    predicted = y_pred.sum(axis=0).astype(float)
    support = y_true.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(k), where=total > 0)
    return precision, recall, f1, support


def evaluate_multilabel(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[str],
    majority_set: np.ndarray,
    *,
    seed: int = 0,
) -> Evaluation:
    """Multi-label: accuracy is exact-set match; precision/recall/F1 are per class, macro.
    The majority rate is the exact-match rate of always answering the commonest label set."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    n, k = y_true.shape
    precision, recall, f1, support = _multilabel_prf(y_true, y_pred)
    _, _, majority_f1, _ = _multilabel_prf(
        y_true, np.broadcast_to(majority_set.astype(bool), y_true.shape)
    )
    exact = (y_true == y_pred).all(axis=1)
    majority_exact = (y_true == majority_set[None, :]).all(axis=1)

    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(500):
        index = rng.integers(0, n, size=n)
        t, p = y_true[index], y_pred[index]
        tp_b = (t & p).sum(axis=0)
        denominator = t.sum(axis=0) + p.sum(axis=0)
        f1_b = np.divide(2 * tp_b, denominator, out=np.zeros(k), where=denominator > 0)
        boot.append(f1_b[denominator > 0].mean() if (denominator > 0).any() else 0.0)
    f1_ci = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if n else (0.0, 1.0)
    # A k x k "confusion" for multi-label: row = true class, column = predicted class co-occurrence.
    matrix = y_true.T.astype(np.int64) @ y_pred.astype(np.int64)
    majority_name = (
        "+".join(c for c, on in zip(classes, majority_set, strict=True) if on) or "(none)"
    )
    return Evaluation(
        classes=list(classes),
        n=n,
        accuracy=float(exact.mean()) if n else 0.0,
        accuracy_ci=wilson_interval(int(exact.sum()), n),
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        f1=float(f1.mean()),
        f1_ci=f1_ci,
        balanced_accuracy=float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        majority_class=majority_name,
        majority_rate=float(majority_exact.mean()) if n else 0.0,
        majority_rate_ci=wilson_interval(int(majority_exact.sum()), n),
        majority_f1=float(majority_f1.mean()),
        matrix=matrix,
        per_class=_per_class(classes, precision, recall, f1, support),
    )


def _per_class(classes, precision, recall, f1, support) -> list[dict]:  # noqa: ANN001 - numpy arrays
    return [
        {
            "class_name": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]
