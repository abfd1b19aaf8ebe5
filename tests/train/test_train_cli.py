"""End to end on a generated image set with a learnable signal: train, record, show, compare,
score, predict, delete — through the CLI, against the real database and real TensorFlow.

One run is trained once for the module (tests here use its rows and must not truncate)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from skinctl.db.models import (
    ConditionLabel,
    ImagePrediction,
    TrainingClassMetric,
    TrainingEpoch,
    TrainingGroupMetric,
    TrainingRun,
    TrainingRunSplit,
)
from skinctl.storage.local import LocalStorage
from tests.conftest import truncate_all
from tests.train.conftest import cli_for
from tests.train.factory import CLASS_STYLE, draw_image, generated_set

TRAIN_ARGS = [
    "--task",
    "condition",
    "--image-size",
    "32",
    "--epochs",
    "12",
    "--batch-size",
    "16",
    "--learning-rate",
    "0.003",
    "--test-fraction",
    "0.25",
    "--val-fraction",
    "0.2",
    "--seed",
    "7",
    "--patience",
    "4",
    "--balance-by",
    "fitzpatrick",
]


@pytest.fixture(scope="module")
def trained(session_engine, database_url, module_home):
    truncate_all(session_engine)
    storage = LocalStorage(str(module_home / "images"))
    with Session(session_engine) as session, session.begin():
        stored = generated_set(session, storage, per_class=40, seed=1)
    cli = cli_for(database_url, module_home)
    result = cli("train", "run", *TRAIN_ARGS, "--name", "shapes", "--notes", "generated", "--json")
    assert result.exit_code == 0, result.stderr + str(result.exception)
    yield {
        "run": result.json(),
        "cli": cli,
        "engine": session_engine,
        "storage": storage,
        "stored": stored,
        "stderr": result.stderr,
    }
    truncate_all(session_engine)


def test_learns_the_generated_signal(trained):
    run = trained["run"]
    assert run["status"] == "finished"
    assert run["accuracy"] >= 0.9, run
    test = run["metrics"]["test"]
    low, high = test["accuracy_ci95"]
    assert low <= run["accuracy"] <= high and low > run["majority_rate"]
    assert test["beats_majority"] and run["metrics"]["warning"] is None
    assert 0 < run["majority_rate"] < 0.5  # three balanced classes
    assert test["f1_macro_ci95"][0] <= run["f1_score"] <= test["f1_macro_ci95"][1]
    assert "does NOT beat" not in trained["stderr"]


def test_every_metric_is_recorded(trained):
    run, engine = trained["run"], trained["engine"]
    run_id = run["id"]
    with Session(engine) as session:
        row = session.get_one(TrainingRun, run_id)
        assert row.model_name == "shapes" and row.version == "1" and row.task == "condition"
        assert row.notes == "generated" and row.started_by == "tester"
        assert row.dataset_size == 120 and row.finished_at is not None
        assert row.training_duration_minutes is not None
        for field in ("accuracy", "precision_score", "recall", "f1_score", "majority_rate"):
            assert 0 <= getattr(row, field) <= 1
        hp = row.hyperparameters
        assert hp["classes"] == sorted(CLASS_STYLE)
        assert hp["seed"] == 7 and hp["image_size"] == 32 and hp["epochs"] == 12
        assert hp["balance_by"] == "fitzpatrick" and hp["model"] == "small-cnn"
        assert set(hp["library_versions"]) >= {"tensorflow", "keras", "numpy", "python"}
        assert sum(hp["split_sizes"].values()) == 120
        epochs = session.scalars(select(TrainingEpoch).where(TrainingEpoch.run_id == run_id)).all()
        assert len(epochs) == row.epochs_run >= row.best_epoch >= 1
        assert all(e.train_loss is not None and e.val_loss is not None for e in epochs)
        best = min(epochs, key=lambda e: e.val_loss)
        assert best.epoch == row.best_epoch
        classes = session.scalars(
            select(TrainingClassMetric).where(TrainingClassMetric.run_id == run_id)
        ).all()
        assert sorted(c.class_name for c in classes) == sorted(CLASS_STYLE)
        assert sum(c.support for c in classes) == hp["split_sizes"]["test"]
        groups = session.scalars(
            select(TrainingGroupMetric).where(TrainingGroupMetric.run_id == run_id)
        ).all()
        assert {g.group_by for g in groups} == {"fitzpatrick", "skin_type", "age_range"}
        for group_by in ("fitzpatrick", "skin_type", "age_range"):
            assert (
                sum(g.support for g in groups if g.group_by == group_by)
                == hp["split_sizes"]["test"]
            )
        splits = session.scalar(
            select(func.count())
            .select_from(TrainingRunSplit)
            .where(TrainingRunSplit.run_id == run_id)
        )
        assert splits == 120
        matrix = np.array(row.confusion_matrix["matrix"])
        assert matrix.shape == (3, 3) and matrix.sum() == hp["split_sizes"]["test"]
        assert np.trace(matrix) / matrix.sum() == pytest.approx(row.accuracy)
        storage = trained["storage"]
        assert row.model_uri == storage.url_for(f"models/run-{run_id}.keras")
        assert storage.exists(storage.key_for(row.model_uri))
        # the checksum a model registry verifies the downloaded file against
        saved = storage.get(storage.key_for(row.model_uri))
        assert row.metrics["model_sha256"] == hashlib.sha256(saved).hexdigest()


def test_show_and_list_json(trained):
    cli, run_id = trained["cli"], trained["run"]["id"]
    shown = cli("train", "show", str(run_id), "--json")
    assert shown.exit_code == 0, shown.stderr
    detail = shown.json()
    assert detail["id"] == run_id and len(detail["epochs"]) == detail["epochs_run"]
    assert detail["split_sizes"] == detail["hyperparameters"]["split_sizes"]
    listed = cli("train", "list", "--json")
    assert [r["id"] for r in listed.json()] == [run_id]
    human = cli("train", "show", "latest")
    assert (
        human.exit_code == 0
        and "majority-class rate" in human.stdout
        and "confusion matrix" in human.stdout
    )


def test_reloaded_model_predicts_the_same_probabilities(trained, tmp_path):
    import keras

    from skinctl.train.pipeline import decode_files

    run, storage, cli = trained["run"], trained["storage"], trained["cli"]
    test_ids = [s.image_id for s in trained["stored"]][:6]
    stored = {s.image_id: s for s in trained["stored"]}
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(storage.get(storage.key_for(run["model_uri"])))
    model = keras.models.load_model(model_file)
    direct = model.predict(decode_files([stored[i].data for i in test_ids], 32), verbose=0)
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras").predict(
        decode_files([stored[i].data for i in test_ids], 32), verbose=0
    )
    np.testing.assert_array_equal(direct, again)

    result = cli("predict", *map(str, test_ids), "--run", str(run["id"]), "--top", "3", "--json")
    assert result.exit_code == 0, result.stderr
    answers = result.json()["results"]
    classes = run["hyperparameters"]["classes"]
    for image_id, answer, row in zip(test_ids, answers, direct, strict=True):
        assert answer["image_id"] == image_id
        got = {t["class"]: t["confidence"] for t in answer["top"]}
        for j, name in enumerate(classes):
            assert got[name] == pytest.approx(float(row[j]), abs=1e-6)


def test_predict_a_file_not_in_the_database(trained, tmp_path):
    rng = np.random.default_rng(999)
    files = []
    for label in CLASS_STYLE:
        path = tmp_path / f"new-{label}.jpg"
        path.write_bytes(draw_image(label, rng))
        files.append((label, path))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    result = trained["cli"](
        "predict", *(str(p) for _, p in files), str(bad), "--top", "1", "--json"
    )
    assert result.exit_code == 3  # answered the good ones, rejected one input
    document = result.json()
    assert [r["prediction"] for r in document["results"]] == [label for label, _ in files]
    assert all(len(r["top"]) == 1 for r in document["results"])
    assert document["rejected"][0]["input"] == str(bad)
    assert "broken.jpg" in result.stderr


def test_score_flags_a_flipped_label(trained):
    engine, cli, run_id = trained["engine"], trained["cli"], trained["run"]["id"]
    with Session(engine) as session, session.begin():
        held_out = session.scalars(
            select(TrainingRunSplit.image_id)
            .where(TrainingRunSplit.run_id == run_id, TrainingRunSplit.split == "test")
            .order_by(TrainingRunSplit.image_id)
        ).all()
        victim = held_out[0]
        label = session.scalar(select(ConditionLabel).where(ConditionLabel.image_id == victim))
        wrong = next(c for c in CLASS_STYLE if c != label.condition_type)
        session.execute(
            update(ConditionLabel).where(ConditionLabel.id == label.id).values(condition_type=wrong)
        )
    for _ in range(2):  # idempotent: scoring again replaces the run's scores
        result = cli("train", "score", "--run", str(run_id), "--json")
        assert result.exit_code == 0, result.stderr
    document = result.json()
    split_sizes = trained["run"]["hyperparameters"]["split_sizes"]
    assert document["scored"] == split_sizes["val"] + split_sizes["test"]
    assert document["likely_mislabeled"][0]["image_id"] == victim
    assert document["likely_mislabeled"][0]["mislabel_score"] > 0.5
    with Session(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(ImagePrediction)) == document["scored"]
        )
        top = session.scalars(
            select(ImagePrediction).order_by(ImagePrediction.mislabel_score.desc())
        ).first()
        assert top.image_id == victim and top.given_labels == [wrong]
        assert top.self_confidence == pytest.approx(top.probabilities[wrong])
        assert sum(top.probabilities.values()) == pytest.approx(1, abs=1e-4)


def test_compare_and_delete(trained):
    cli, first = trained["cli"], trained["run"]["id"]
    second = cli(
        "train",
        "run",
        *TRAIN_ARGS[:4],
        "--epochs",
        "1",
        "--seed",
        "8",
        "--version",
        "exp",
        "--json",
    )
    assert second.exit_code == 0, second.stderr
    second_id = second.json()["id"]
    compared = cli("train", "compare", str(first), str(second_id), "--json")
    assert list(compared.json()) == ["a", "b", "rows", "test_split_overlap"]
    assert all(list(r) == ["field", "a", "b", "differs"] for r in compared.json()["rows"])
    rows = {r["field"]: r for r in compared.json()["rows"]}
    assert rows["option seed"]["differs"] and rows["option seed"]["a"] == 7
    assert not rows["task"]["differs"]
    human = cli("train", "compare", str(first), str(second_id))
    assert human.exit_code == 0 and "option seed" in human.stdout
    uri = second.json()["model_uri"]
    storage = trained["storage"]
    deleted = cli("train", "delete", str(second_id), "--json")
    assert list(deleted.json()) == ["id", "deleted", "model_uri", "model_deleted"]
    assert deleted.json()["model_deleted"] and not storage.exists(storage.key_for(uri))
    assert cli("train", "show", str(second_id)).exit_code == 1
    assert [r["id"] for r in cli("train", "list", "--json").json()] == [first]


# --- the --json shapes scripts depend on: keys and their order -------------------------------

SUMMARY_KEYS = [
    "id",
    "model_name",
    "version",
    "task",
    "architecture",
    "status",
    "training_date",
    "dataset_size",
    "accuracy",
    "accuracy_ci95",
    "majority_rate",
    "precision_score",
    "recall",
    "f1_score",
    "f1_ci95",
    "best_epoch",
    "epochs_run",
    "training_duration_minutes",
]
DETAIL_KEYS = [
    *SUMMARY_KEYS,
    "model_uri",
    "seed",
    "started_by",
    "finished_at",
    "notes",
    "hyperparameters",
    "metrics",
    "confusion_matrix",
    "split_sizes",
    "images_scored",
    "epochs",
    "per_class",
    "per_group",
]
EPOCH_KEYS = [
    "epoch",
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "learning_rate",
    "seconds",
]
CLASS_KEYS = ["class_name", "precision", "recall", "f1", "support", "threshold"]
GROUP_KEYS = [
    "group_by",
    "group_value",
    "support",
    "accuracy",
    "accuracy_ci95",
    "f1_macro",
    "majority_rate",
]


def _assert_detail_shape(detail: dict) -> None:
    assert list(detail) == DETAIL_KEYS
    assert list(detail["epochs"][0]) == EPOCH_KEYS
    assert list(detail["per_class"][0]) == CLASS_KEYS
    assert list(detail["per_group"][0]) == GROUP_KEYS
    assert list(detail["split_sizes"]) == ["train", "val", "test"]
    assert isinstance(detail["status"], str) and isinstance(detail["training_date"], str)


def test_json_shapes_of_run_show_and_list(trained):
    cli, run = trained["cli"], trained["run"]
    _assert_detail_shape(run)  # train run --json
    shown = cli("train", "show", str(run["id"]), "--json")
    _assert_detail_shape(shown.json())
    listed = cli("train", "list", "--json").json()
    assert isinstance(listed, list) and list(listed[0]) == SUMMARY_KEYS
    assert cli("train", "list", "--task", "condition", "--json").json() == listed


def test_json_shapes_of_score_and_predict(trained, tmp_path):
    cli, run_id = trained["cli"], trained["run"]["id"]
    scored = cli("train", "score", "--run", str(run_id), "--json")
    assert scored.exit_code == 0, scored.stderr
    document = scored.json()
    assert list(document) == [
        "run",
        "scored",
        "origin",
        "folds",
        "agreement_with_given_labels",
        "likely_mislabeled",
    ]
    assert list(document["likely_mislabeled"][0]) == [
        "image_id",
        "given_labels",
        "predicted_label",
        "self_confidence",
        "mislabel_score",
    ]

    image_id = trained["stored"][0].image_id
    file = tmp_path / "one.jpg"
    file.write_bytes(trained["stored"][0].data)
    predicted = cli("predict", str(image_id), str(file), str(tmp_path / "missing.jpg"), "--json")
    assert predicted.exit_code == 3, predicted.stderr
    document = predicted.json()
    assert list(document) == ["run", "task", "classes", "results", "rejected"]
    by_id, by_file = document["results"]
    assert list(by_id) == [
        "input",
        "image_id",
        "image_url",
        "prediction",
        "top",
    ]  # no file, labels, severity
    assert list(by_file) == ["input", "file", "prediction", "top"]
    assert list(by_file["top"][0]) == ["class", "confidence"]
    assert list(document["rejected"][0]) == ["input", "reason"]


def test_bad_choices_are_usage_errors_listing_the_valid_values(trained):
    cli = trained["cli"]
    for option, value, valid in (
        ("--task", "wrinkles", "skin-type"),  # sentiment is a task now (reviews)
        ("--model", "resnet", "small-cnn"),
        ("--split", "random", "group"),
        ("--balance-by", "height", "age-range"),
    ):
        args = ["--task", "condition", option, value] if option != "--task" else [option, value]
        result = cli("train", "run", *args)
        assert result.exit_code == 2, (option, result.stderr)
        assert value in result.stderr and valid in result.stderr
    assert cli("train", "list", "--task", "colour").exit_code == 2
