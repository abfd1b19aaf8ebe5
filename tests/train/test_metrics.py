"""Evaluation numbers against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from skinctl.train import metrics as mt


def test_wilson_interval_known_values():
    low, high = mt.wilson_interval(81, 100)
    assert (round(low, 4), round(high, 4)) == (0.7222, 0.8749)
    assert mt.wilson_interval(10, 10)[1] == 1.0 and mt.wilson_interval(0, 10)[0] == 0.0
    assert mt.wilson_interval(0, 0) == (0.0, 1.0)


def test_evaluate_matches_hand_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2, 2, 2, 0, 2])
    e = mt.evaluate(y_true, y_pred, ["a", "b", "c"], majority_index=2, seed=1)
    assert e.accuracy == 0.7 and e.majority_rate == 0.5 and e.majority_class == "c"
    assert e.matrix.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 4]]
    per = {c["class_name"]: c for c in e.per_class}
    assert per["a"]["precision"] == pytest.approx(2 / 3) and per["a"]["recall"] == pytest.approx(
        2 / 3
    )
    assert per["b"]["precision"] == pytest.approx(1 / 2) and per["b"]["recall"] == pytest.approx(
        1 / 2
    )
    assert per["c"]["f1"] == pytest.approx(2 * 0.8 * 0.8 / 1.6)
    assert e.f1 == pytest.approx((2 / 3 + 1 / 2 + 0.8) / 3)
    assert e.f1_ci[0] < e.f1 < e.f1_ci[1]
    assert e.majority_f1 == pytest.approx((0 + 0 + 2 * 0.5 / 1.5) / 3)
    assert not e.beats_majority  # 0.7 on 10 images: the interval includes 0.5


def test_bootstrap_batch_equals_single_computation():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=(5, 50))
    y_pred = rng.integers(0, 4, size=(5, 50))
    batch = mt.macro_f1_batch(y_true, y_pred, 4)
    for row in range(5):
        single = mt.evaluate(y_true[row], y_pred[row], list("abcd"), 0).f1
        assert batch[row] == pytest.approx(single)


def test_multilabel_thresholds_and_exact_match():
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.7, 0.35], [0.1, 0.4], [0.2, 0.1]])
    thresholds = mt.best_thresholds(y_true, scores)
    assert (scores >= thresholds).astype(int).tolist() == y_true.tolist()
    e = mt.evaluate_multilabel(y_true, scores >= thresholds, ["x", "y"], np.array([True, False]))
    assert e.accuracy == 1.0 and e.majority_rate == 0.25 and e.f1 == 1.0


def test_majority_warning_wording():
    from skinctl.train.evaluate import majority_warning

    worse = mt.evaluate(np.array([0] * 8 + [1] * 2), np.array([1] * 10), ["a", "b"], 0)
    assert "does NOT beat the majority-class rate" in majority_warning(worse)
    unclear = mt.evaluate(
        np.array([0] * 6 + [1] * 4), np.array([0] * 6 + [1, 1, 1, 0]), ["a", "b"], 0
    )
    assert "does not clearly beat" in majority_warning(unclear)
    y = np.array([0, 1] * 100)
    assert majority_warning(mt.evaluate(y, y, ["a", "b"], 0)) is None
