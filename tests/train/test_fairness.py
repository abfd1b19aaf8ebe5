"""Fairness: the Newcombe interval, the worst-group summary, groups by estimated tone, gender and
ethnicity, `--balance-by tone`, and `train show --fairness`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingGroupMetric, TrainingRun
from skinctl.train import metrics as mt
from skinctl.train.dataset import Example, sample_weights
from skinctl.train.evaluate import group_metrics
from skinctl.train.fairness import (
    fairness_summary,
    newcombe_difference,
    wilson_interval,
)


@dataclass(frozen=True)
class Row:
    group_by: str
    group_value: str
    support: int
    accuracy: float | None


def test_wilson_interval_published_example():
    # Newcombe (1998a), 81/263: 0.2553-0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("a", "n_a", "b", "n_b", "expected"),
    [
        # Newcombe (1998b), method 10, his examples (a) and (b).
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
    ],
)
def test_newcombe_hybrid_score_published_examples(a, n_a, b, n_b, expected):
    difference, low, high = newcombe_difference(a, n_a, b, n_b)
    assert difference == pytest.approx(a / n_a - b / n_b)
    assert (round(low, 4), round(high, 4)) == expected


def test_worst_group_against_the_rest_is_flagged_when_the_interval_excludes_zero():
    groups = [
        Row("tone", "light", 60, 0.9),
        Row("tone", "intermediate", 50, 0.88),
        Row("tone", "dark", 40, 0.5),
        Row("tone", "tan", 3, 0.0),  # too small to be called the worst; still in the rest
        Row("gender", "f", 40, 0.80),
        Row("gender", "m", 38, 0.79),
        Row("ethnicity", "only-one", 30, 0.7),  # one group: nothing to compare
        Row("age_range", "18-29", 10, None),  # no figure: ignored
    ]
    summary = fairness_summary(groups)
    assert [g.group_by for g in summary.gaps] == ["tone", "gender"]
    tone = summary.gaps[0]
    assert summary.worst == tone and summary.flagged
    assert (tone.worst_group, tone.worst_support, tone.worst_accuracy) == ("dark", 40, 0.5)
    assert tone.groups == 3
    assert tone.rest_support == 113 and tone.rest_accuracy == round((54 + 44 + 0) / 113, 4)
    assert tone.gap == round(98 / 113 - 0.5, 4)
    assert tone.gap_low > 0 and tone.flagged
    gender = summary.gaps[1]
    assert gender.worst_group == "m" and not gender.flagged
    assert gender.gap_low < 0 < gender.gap_high


def test_no_groups_no_summary():
    summary = fairness_summary([])
    assert summary.gaps == () and summary.worst is None and not summary.flagged


def example(i: int, label: str, **fields) -> Example:
    return Example(
        image_id=i, image_url=f"file:///{i}", labels=[label], dataset_source="d", **fields
    )


def test_group_metrics_cover_tone_gender_and_ethnicity():
    examples = [
        example(0, "a", skin_tone="light", gender="f", ethnicity="x"),
        example(1, "b", skin_tone="dark", gender="m", ethnicity="y"),
        example(2, "a", skin_tone="dark", gender="f"),
        example(3, "b"),
    ]
    y_true = [0, 1, 0, 1]
    y_pred = [0, 0, 0, 1]

    def evaluation_of(indices: list[int]) -> mt.Evaluation:
        import numpy as np

        return mt.evaluate(
            np.array([y_true[i] for i in indices]),
            np.array([y_pred[i] for i in indices]),
            ["a", "b"],
            0,
            seed=1,
        )

    rows = {(g.group_by, g.group_value): g for g in group_metrics(evaluation_of, examples)}
    assert set(rows) == {
        ("tone", "light"),
        ("tone", "dark"),
        ("gender", "f"),
        ("gender", "m"),
        ("ethnicity", "x"),
        ("ethnicity", "y"),
    }
    assert rows[("tone", "dark")].support == 2 and rows[("tone", "dark")].accuracy == 0.5
    assert rows[("gender", "m")].accuracy == 0.0


def test_balance_by_tone_reweights_rare_tones_up():
    examples = [example(i, "a", skin_tone="light") for i in range(6)]
    examples += [example(6 + i, "a", skin_tone="dark") for i in range(2)]
    examples.append(example(8, "a"))  # no tone: weight stays the class weight
    weights, _ = sample_weights(examples, ["a"], "tone")
    assert weights[0] == pytest.approx(8 / (2 * 6))
    assert weights[6] == pytest.approx(8 / (2 * 2))
    assert weights[8] == pytest.approx(1.0)


def test_train_show_fairness(cli, engine):
    with Session(engine) as session, session.begin():
        run = TrainingRun(model_name="toned", version="1")
        session.add(run)
        session.flush()
        for value, support, accuracy in [
            ("light", 60, 0.9),
            ("brown", 50, 0.86),
            ("dark", 40, 0.5),
        ]:
            session.add(
                TrainingGroupMetric(
                    run_id=run.id,
                    group_by="tone",
                    group_value=value,
                    support=support,
                    accuracy=accuracy,
                )
            )
        run_id = run.id
    result = cli("train", "show", str(run_id), "--fairness", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert list(report) == ["run_id", "model_name", "version", "fairness"]
    assert list(report["fairness"]) == ["gaps", "worst", "flagged", "method"]
    assert list(report["fairness"]["worst"]) == [
        "group_by",
        "groups",
        "worst_group",
        "worst_support",
        "worst_accuracy",
        "rest_support",
        "rest_accuracy",
        "gap",
        "gap_low",
        "gap_high",
        "flagged",
    ]
    assert report["fairness"]["worst"]["worst_group"] == "dark"
    assert report["fairness"]["flagged"] is True
    human = cli("train", "show", str(run_id), "--fairness")
    assert human.exit_code == 0
    assert "worst group vs the rest" in human.stdout and "FLAG" in human.stdout
    assert "dark" in human.stdout
