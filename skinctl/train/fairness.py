"""The fairness summary of a run (or of any evaluation): within each grouping (estimated tone,
Fitzpatrick, skin type, age range, gender, ethnicity, dataset), the group with the lowest test
accuracy against the rest of that grouping, with the gap and its 95% interval.

A pure function over per-group figures (support and accuracy), so the run's own test, a
recorded evaluation on another dataset and the TUI all use it the same way.

The interval is Newcombe's hybrid score interval for the difference of two independent
proportions (Newcombe 1998, method 10, from two Wilson intervals): it stays inside [-1, 1] and
behaves at small counts and near 0 or 1, where the Wald interval does not. A gap is flagged
when its interval excludes zero. Picking the worst of several groups is itself a choice, so a
flag on a grouping with many small groups deserves a look, not a conclusion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

Z95 = 1.959963984540054
MIN_SUPPORT = 5  # groups smaller than this are shown per group but never called the worst


class GroupFigures(Protocol):
    """What the summary reads from a per-group row (GroupScore, GroupRow, evaluations ...)."""

    @property
    def group_by(self) -> str: ...
    @property
    def group_value(self) -> str: ...
    @property
    def support(self) -> int | None: ...
    @property
    def accuracy(self) -> float | None: ...


@dataclass(frozen=True)
class FairnessGap:
    """One grouping: its worst group against the rest of the grouping's test images."""

    group_by: str
    groups: int  # groups in this grouping with at least MIN_SUPPORT images
    worst_group: str
    worst_support: int
    worst_accuracy: float
    rest_support: int
    rest_accuracy: float
    gap: float  # rest accuracy minus worst accuracy: > 0 when the worst group does worse
    gap_low: float  # 95% interval of the gap (Newcombe hybrid score)
    gap_high: float
    flagged: bool  # the interval excludes zero


@dataclass(frozen=True)
class FairnessSummary:
    gaps: tuple[FairnessGap, ...]  # one per grouping with two or more groups, largest gap first
    worst: FairnessGap | None  # the largest gap of all
    flagged: bool  # any grouping's gap is flagged
    method: str = "worst group vs rest, accuracy gap, Newcombe hybrid score 95% interval"


@dataclass(frozen=True)
class RunFairness:
    """`skinctl train show RUN --fairness --json`."""

    run_id: int
    model_name: str
    version: str | None
    fairness: FairnessSummary


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (successes may be fractional after rounding)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(
    successes_1: float, n_1: int, successes_2: float, n_2: int, z: float = Z95
) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval: (difference, low, high)."""
    p1, p2 = successes_1 / n_1, successes_2 / n_2
    l1, u1 = wilson_interval(successes_1, n_1, z)
    l2, u2 = wilson_interval(successes_2, n_2, z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, low, high


def fairness_summary(
    groups: Iterable[GroupFigures], min_support: int = MIN_SUPPORT
) -> FairnessSummary:
    """The worst group against the rest, per grouping; see the module docstring."""
    by_grouping: dict[str, list[tuple[str, int, float]]] = {}
    for row in groups:
        if row.accuracy is None or not row.support or row.support <= 0:
            continue
        correct = round(row.accuracy * row.support)  # accuracies are stored rounded
        by_grouping.setdefault(row.group_by, []).append((row.group_value, row.support, correct))
    gaps = []
    for group_by, rows in by_grouping.items():
        eligible = [row for row in rows if row[1] >= min_support]
        if len(eligible) < 2:
            continue
        value, support, correct = min(eligible, key=lambda row: (row[2] / row[1], row[0]))
        rest_support = sum(row[1] for row in rows if row[0] != value)
        rest_correct = sum(row[2] for row in rows if row[0] != value)
        gap, low, high = newcombe_difference(rest_correct, rest_support, correct, support)
        gaps.append(
            FairnessGap(
                group_by=group_by,
                groups=len(eligible),
                worst_group=value,
                worst_support=support,
                worst_accuracy=round(correct / support, 4),
                rest_support=rest_support,
                rest_accuracy=round(rest_correct / rest_support, 4),
                gap=round(gap, 4),
                gap_low=round(low, 4),
                gap_high=round(high, 4),
                flagged=low > 0 or high < 0,
            )
        )
    gaps.sort(key=lambda g: (-g.gap, g.group_by))
    return FairnessSummary(
        gaps=tuple(gaps),
        worst=gaps[0] if gaps else None,
        flagged=any(g.flagged for g in gaps),
    )
