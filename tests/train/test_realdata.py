"""A short CPU run on the real skin_conditions set (six visually distinct classes) with the
group-aware split: it must clearly beat the majority-class rate and record every metric."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingClassMetric, TrainingEpoch, TrainingRunSplit
from skinctl.storage.local import LocalStorage
from tests.conftest import shared_data
from tests.train.realdata import load_skin_conditions

pytestmark = pytest.mark.realdata


def test_skin_conditions_beats_the_majority_rate(engine, home, cli):
    root = shared_data("skin_conditions")
    storage = LocalStorage(str(home / "images"))
    with Session(engine) as session, session.begin():
        loaded = load_skin_conditions(session, storage, root)
    assert loaded["images"] >= 300
    result = cli(
        "train",
        "run",
        "--task",
        "condition",
        "--dataset",
        "skin_conditions",
        "--image-size",
        "64",
        "--epochs",
        "25",
        "--patience",
        "6",
        "--batch-size",
        "32",
        "--learning-rate",
        "0.002",
        "--test-fraction",
        "0.25",
        "--val-fraction",
        "0.15",
        "--seed",
        "1",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    run = result.json()
    test = run["metrics"]["test"]
    print(
        f"skin_conditions: accuracy {run['accuracy']:.3f} (95% CI {test['accuracy_ci95']}) "
        f"vs majority {run['majority_rate']:.3f}; macro F1 {run['f1_score']:.3f} "
        f"(95% CI {test['f1_macro_ci95']}); best epoch {run['best_epoch']}/{run['epochs_run']}"
    )
    # clearly: the whole 95% interval of the accuracy lies above the majority-class rate
    assert test["accuracy_ci95"][0] > run["majority_rate"] + 0.05
    assert run["f1_score"] > test["majority_f1_macro"] + 0.1
    with Session(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(TrainingRunSplit)) == loaded["images"]
        )
        assert session.scalar(select(func.count()).select_from(TrainingEpoch)) == run["epochs_run"]
        assert session.scalar(select(func.count()).select_from(TrainingClassMetric)) == 6
    assert len(run["confusion_matrix"]["matrix"]) == 6 and run["model_uri"]
    assert run["hyperparameters"]["linked_groups"] <= loaded["images"]
