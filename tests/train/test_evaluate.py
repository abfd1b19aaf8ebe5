"""`skinctl train evaluate`: a run's model on another dataset, copies of its training images
left out and counted, classes mapped through the vocabulary, recorded beside its own test."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import map_dataset_names
from skinctl.db.models import (
    ConditionLabel,
    EvaluationGroupMetric,
    ImageDuplicate,
    ImageSource,
    LabelClass,
    LabelClassSynonym,
    TrainingRunSplit,
)
from skinctl.storage.local import LocalStorage
from tests.conftest import truncate_all
from tests.train.conftest import cli_for
from tests.train.factory import add_image, draw_image, generated_set

EVALUATION_KEYS = [
    "id",
    "run_id",
    "datasets",
    "evaluated_by",
    "evaluated_at",
    "images",
    "exact_copies_left_out",
    "near_copies_left_out",
    "left_out",
    "accuracy",
    "accuracy_ci95",
    "f1_macro",
    "f1_ci95",
    "majority_rate",
]
DETAIL_KEYS = [
    *EVALUATION_KEYS,
    "majority_class",
    "warning",
    "unknown_classes",
    "per_class",
    "per_group",
    "confusion_matrix",
    "fairness",
]


@pytest.fixture(scope="module")
def evaluated(session_engine, database_url, module_home):
    engine = session_engine
    truncate_all(engine)
    storage = LocalStorage(str(module_home / "images"))
    with Session(engine) as session, session.begin():
        generated_set(session, storage, per_class=20, seed=3)
    with engine.begin() as connection:
        map_dataset_names(
            connection, "generated", [("condition", c) for c in ("acne", "eczema", "rosacea")], None
        )
    cli = cli_for(database_url, module_home)
    trained = cli(
        "train", "run", "--task", "condition", "--dataset", "generated", "--epochs", "2",
        "--image-size", "32", "--batch-size", "16", "--json",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    run_id = trained.json()["id"]
    rng = np.random.default_rng(99)
    with Session(engine) as session, session.begin():
        train_ids = session.scalars(
            select(TrainingRunSplit.image_id)
            .where(TrainingRunSplit.run_id == run_id, TrainingRunSplit.split == "train")
            .order_by(TrainingRunSplit.image_id)
        ).all()
        # 'other' calls eczema 'Dermatitis' (a synonym) and acne 'ACNE' (case only)
        eczema = session.scalar(select(LabelClass).where(LabelClass.name == "eczema"))
        session.add(
            LabelClassSynonym(
                class_id=eczema.id, task="condition", dataset_source="other",
                name="Dermatitis", name_key="dermatitis",
            )
        )  # fmt: skip
        fresh = []
        for n in range(12):
            label = ("acne", "eczema", "rosacea")[n % 3]
            shown = {"acne": "ACNE", "eczema": "Dermatitis"}.get(label, label)
            fresh.append(
                add_image(session, storage, draw_image(label, rng, 48), labels=[shown],
                          dataset="other", fitzpatrick=(n % 2) + 1)
            )  # fmt: skip
        # a class the run never learned
        add_image(session, storage, draw_image("acne", rng, 48), labels=["keloid"], dataset="other")
        # an exact copy: a training image's bytes ingested again from 'other'
        source = ImageSource(image_id=train_ids[0], dataset_source="other", local_path="copy.jpg")
        session.add(source)
        session.flush()
        session.add(
            ConditionLabel(
                image_id=train_ids[0], image_source_id=source.id, condition_type="acne",
                task="condition", source="dataset",
            )
        )  # fmt: skip
        # near copies: one linked straight to a training image, one linked through it
        near = [
            add_image(session, storage, draw_image("rosacea", rng, 48), labels=["rosacea"], dataset="other")
            for _ in range(2)
        ]  # fmt: skip
        pairs = sorted([(train_ids[1], near[0].image_id), (near[0].image_id, near[1].image_id)])
        for a, b in pairs:
            session.add(
                ImageDuplicate(
                    image_id_a=min(a, b), image_id_b=max(a, b), distance=3, method="phash"
                )
            )
    result = cli("train", "evaluate", str(run_id), "--dataset", "other", "--no-link", "--json")
    assert result.exit_code == 0, result.stderr + str(result.exception)
    return {"cli": cli, "engine": engine, "run_id": run_id, "result": result}


def test_evaluation_leaves_out_copies_and_unknown_classes(evaluated):
    result = evaluated["result"]
    evaluation = result.json()
    assert list(evaluation) == DETAIL_KEYS
    assert evaluation["run_id"] == evaluated["run_id"]
    assert evaluation["datasets"] == ["other"]
    assert evaluation["images"] == 12  # the fresh images, their names mapped to the run's classes
    assert evaluation["exact_copies_left_out"] == 1
    assert evaluation["near_copies_left_out"] == 2
    assert evaluation["left_out"] == {
        "class the run does not know": 1,
        "exact copy of a training image": 1,
        "near copy of a training image": 2,
    }
    assert evaluation["unknown_classes"] == {"keloid": 1}
    assert "2 images left out: near copy of a training image." in result.stderr
    assert {c["class_name"]: c["support"] for c in evaluation["per_class"]} == {
        "acne": 4,
        "eczema": 4,
        "rosacea": 4,
    }
    low, high = evaluation["accuracy_ci95"]
    assert 0 <= low <= evaluation["accuracy"] <= high <= 1
    assert evaluation["f1_ci95"][0] <= evaluation["f1_macro"] <= evaluation["f1_ci95"][1]
    groups = {(g["group_by"], g["group_value"]): g["support"] for g in evaluation["per_group"]}
    assert groups[("fitzpatrick", "1")] == 6 and groups[("fitzpatrick", "2")] == 6
    with Session(evaluated["engine"]) as session:
        stored = session.scalars(
            select(EvaluationGroupMetric.group_value).where(
                EvaluationGroupMetric.evaluation_id == evaluation["id"],
                EvaluationGroupMetric.group_by == "fitzpatrick",
            )
        ).all()
    assert sorted(stored) == ["1", "2"]
    # the evaluation's fairness summary: Fitzpatrick 1 against 2, each of 6 images
    fairness = evaluation["fairness"]
    assert list(fairness) == ["gaps", "worst", "flagged", "method"]
    fitzpatrick = [g for g in fairness["gaps"] if g["group_by"] == "fitzpatrick"]
    assert len(fitzpatrick) == 1 and fitzpatrick[0]["worst_support"] == 6
    gap = fitzpatrick[0]
    assert gap["gap_low"] <= gap["gap"] <= gap["gap_high"]
    assert gap["flagged"] == (gap["gap_low"] > 0 or gap["gap_high"] < 0)


def test_train_show_lists_evaluations_beside_its_own_test(evaluated):
    cli, run_id = evaluated["cli"], evaluated["run_id"]
    shown = cli("train", "show", str(run_id), "--json")
    evaluations = shown.json()["evaluations"]
    assert len(evaluations) == 1 and list(evaluations[0]) == EVALUATION_KEYS
    assert evaluations[0]["near_copies_left_out"] == 2
    human = cli("train", "show", str(run_id), env={"COLUMNS": "200"})
    assert "own test" in human.stdout and f"evaluation {evaluations[0]['id']}" in human.stdout


def test_on_its_own_dataset_only_the_unseen_test_split_is_scored(evaluated):
    cli, run_id = evaluated["cli"], evaluated["run_id"]
    result = cli("train", "evaluate", str(run_id), "--dataset", "generated", "--no-link", "--json")
    assert result.exit_code == 0, result.stderr
    evaluation = result.json()
    split_sizes = cli("train", "show", str(run_id), "--json").json()["split_sizes"]
    assert evaluation["images"] == split_sizes["test"]
    assert evaluation["exact_copies_left_out"] == split_sizes["train"] + split_sizes["val"]


def test_data_without_labels_is_a_clear_error(evaluated):
    cli, run_id = evaluated["cli"], evaluated["run_id"]
    result = cli("train", "evaluate", str(run_id), "--dataset", "nothing-here", "--no-link")
    assert result.exit_code != 0 and "No image of nothing-here" in result.stderr
