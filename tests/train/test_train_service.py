"""Training paths beyond the plain run: Ctrl-C, multi-label, severity, weights files."""

from __future__ import annotations

import io
import os
import signal

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinctl.db.models import TrainingClassMetric, TrainingEpoch, TrainingRun
from skinctl.errors import StorageError, TrainingError, UsageError
from skinctl.storage.local import LocalStorage
from skinctl.train.options import TrainOptions
from skinctl.train.predict import predict_inputs
from skinctl.train.runner import run_training
from tests.train.factory import CLASS_STYLE, add_image, draw_image, generated_set

SMALL = {
    "image_size": 32,
    "batch_size": 16,
    "learning_rate": 0.003,
    "test_fraction": 0.25,
    "val_fraction": 0.2,
    "seed": 5,
}


@pytest.fixture
def storage(home):
    return LocalStorage(str(home / "images"))


def test_ctrl_c_keeps_the_best_checkpoint_and_records_interrupted(engine, storage, home):
    import keras

    with Session(engine) as session, session.begin():
        generated_set(session, storage, per_class=20, seed=2, fitzpatrick=False)

    class CtrlCAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends

    summary = run_training(
        engine,
        storage,
        TrainOptions(task="condition", epochs=10, **SMALL),
        home=home,
        extra_callbacks=[CtrlCAfterTwoEpochs()],
    )
    assert summary.status == "interrupted"
    assert "interrupted" in summary.notes
    assert summary.epochs_run == 2 and summary.best_epoch in (1, 2)
    assert summary.accuracy is not None and summary.model_uri
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(TrainingEpoch)) == 2
    # the kept checkpoint is a usable model
    answer = predict_inputs(engine, storage, ["1"], run=summary.id, home=home)  # image id 1
    assert answer.results[0].prediction in CLASS_STYLE
    assert not (home / "runs" / f"run-{summary.id}").exists()  # local scratch cleaned up


def _two_shapes(rng, labels):
    """Both classes' shapes side by side (48 x 24 each)."""
    left = Image.open(io.BytesIO(draw_image(labels[0], rng, 48)))
    right = Image.open(io.BytesIO(draw_image(labels[1], rng, 48)))
    canvas = Image.new("RGB", (48, 48))
    canvas.paste(left.resize((24, 48)), (0, 0))
    canvas.paste(right.resize((24, 48)), (24, 0))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_multi_label_learns_sets_with_thresholds(engine, storage, home):
    rng = np.random.default_rng(4)
    with Session(engine) as session, session.begin():
        for _ in range(30):
            for label in ("acne", "eczema"):
                add_image(session, storage, _two_shapes(rng, [label, label]), labels=[label])
            add_image(
                session, storage, _two_shapes(rng, ["acne", "eczema"]), labels=["acne", "eczema"]
            )

    # without --multi-label the pairs are left out, and counted
    single = TrainOptions(task="condition", epochs=1, **SMALL)
    from skinctl.train.fitting import prepare

    with Session(engine) as session:
        prepared = prepare(session, single)
    assert (
        sum(prepared.selection.left_out.values()) == 30 and len(prepared.selection.examples) == 60
    )

    summary = run_training(
        engine,
        storage,
        TrainOptions(task="condition", multi_label=True, epochs=10, **SMALL),
        home=home,
    )
    assert summary.status == "finished" and summary.hyperparameters["multi_label"]
    assert summary.dataset_size == 90
    assert summary.accuracy > summary.majority_rate  # exact-set match
    thresholds = summary.metrics["thresholds"]
    assert set(thresholds) == {"acne", "eczema"} and all(0 < t < 1 for t in thresholds.values())
    with Session(engine) as session:
        rows = session.scalars(select(TrainingClassMetric)).all()
        assert {r.class_name: r.threshold for r in rows} == thresholds
    pair = home / "pair.jpg"
    pair.write_bytes(_two_shapes(rng, ["acne", "eczema"]))
    answer = predict_inputs(engine, storage, [str(pair)], run="latest", home=home)
    assert set(answer.results[0].labels) <= {"acne", "eczema"}


def test_severity_task_answers_a_severity(engine, storage, home):
    rng = np.random.default_rng(6)
    styles = dict(zip(("0", "1", "2"), CLASS_STYLE, strict=True))
    with Session(engine) as session, session.begin():
        for _ in range(20):
            for level, style in styles.items():
                add_image(session, storage, draw_image(style, rng), labels=["acne"], severity=level)
    summary = run_training(
        engine, storage, TrainOptions(task="severity", epochs=6, **SMALL), home=home
    )
    assert summary.hyperparameters["classes"] == ["0", "1", "2"]
    new = home / "new.jpg"
    new.write_bytes(draw_image(styles["2"], rng))
    answer = predict_inputs(engine, storage, [str(new)], run=summary.id, home=home, top=2)
    result = answer.results[0]
    assert answer.task == "severity" and result.severity == result.prediction in styles
    assert len(result.top) == 2


def test_weights_files_and_imagenet(tmp_path, capsys):
    from skinctl.train.architectures import build_model

    with pytest.raises(TrainingError, match="ImageNet weights") as caught:
        build_model("mobilenet-v3-small", 32, 3, weights="imagenet")
    assert "--weights FILE" in caught.value.hint
    assert capsys.readouterr().out == ""  # keras' download notice stays off stdout
    with pytest.raises(UsageError, match="no such file"):
        build_model("small-cnn", 32, 3, weights=str(tmp_path / "missing.weights.h5"))
    source = build_model("small-cnn", 32, 3)
    source.save_weights(tmp_path / "mine.weights.h5")
    loaded = build_model("small-cnn", 32, 3, weights=str(tmp_path / "mine.weights.h5"))
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TrainingError, match="Cannot load weights") as caught:
        build_model("small-cnn", 32, 5, weights=str(tmp_path / "mine.weights.h5"))
    assert len(caught.value.message) < 300 and "same --model" in caught.value.hint
    backbone = build_model("mobilenet-v3-small", 32, 3)
    assert backbone.count_params() > 100_000


def test_failed_run_is_recorded(engine, storage, home):
    with Session(engine) as session, session.begin():
        generated_set(session, storage, per_class=8, seed=3, fitzpatrick=False)
    # one stored object vanishes: reading it fails inside the pipeline
    key = sorted(storage.iter_keys())[0]
    storage.delete(key)
    with pytest.raises(StorageError, match="is missing") as caught:
        run_training(engine, storage, TrainOptions(task="condition", epochs=1, **SMALL), home=home)
    with Session(engine) as session:
        run = session.scalars(select(TrainingRun)).one()
        assert run.status == "failed" and "failed" in run.notes and run.finished_at is not None
    assert key in caught.value.message and key in run.notes


def test_score_by_cross_validation_folds(engine, storage, home):
    from skinctl.train.predict import score_run

    with Session(engine) as session, session.begin():
        generated_set(session, storage, per_class=10, seed=8, fitzpatrick=False)
    reports = []
    summary = run_training(
        engine,
        storage,
        TrainOptions(task="condition", epochs=1, **SMALL),
        home=home,
        report=lambda stage, done, total: reports.append((stage, done, total)),
    )
    # cumulative progress: the epochs out of --epochs, then the evaluation
    assert reports == [("epochs", 1, 1), ("evaluate", 0, 1), ("evaluate", 1, 1)]
    reports.clear()
    result = score_run(
        engine,
        storage,
        summary.id,
        home=home,
        folds=2,
        report=lambda stage, done, total: reports.append((stage, done, total)),
    )
    assert reports == [("folds", 1, 2), ("folds", 2, 2)]
    assert result.origin == "cv" and result.scored == 30  # every image, each out of sample
    with Session(engine) as session:
        from skinctl.db.models import ImagePrediction

        rows = session.scalars(select(ImagePrediction)).all()
        assert {r.fold for r in rows} == {0, 1} and {r.origin for r in rows} == {"cv"}
        assert all(
            r.mislabel_score == pytest.approx(1 - r.probabilities[r.given_labels[0]]) for r in rows
        )


def test_no_signal_run_warns_plainly(engine, storage, home, cli):
    rng = np.random.default_rng(11)
    with Session(engine) as session, session.begin():
        for _ in range(36):  # one drawing style, labels assigned at random: nothing to learn
            add_image(
                session,
                storage,
                draw_image("acne", rng),
                labels=[("dry", "oily")[int(rng.integers(0, 2))]],
                task="skin_type",
            )
        add_image(
            session, storage, draw_image("eczema", rng), labels=["dry", "oily"], task="skin_type"
        )
    result = cli(
        "train",
        "run",
        "--task",
        "skin-type",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--test-fraction",
        "0.3",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    warning = result.json()["metrics"]["warning"]
    assert warning and "majority-class rate" in warning
    assert "warning:" in result.stderr and "majority-class rate" in result.stderr
    assert "1 images left out: several labels" in result.stderr


@pytest.mark.slow  # ~15-40 s: tracing MobileNetV3 dominates
def test_keras_applications_model_trains_saves_and_predicts(engine, storage, home):
    with Session(engine) as session, session.begin():
        stored = generated_set(session, storage, per_class=8, seed=12, fitzpatrick=False)
    summary = run_training(
        engine,
        storage,
        TrainOptions(task="condition", model="mobilenet-v3-small", epochs=1, **SMALL),
        home=home,
    )
    assert summary.status == "finished" and summary.architecture == "mobilenet-v3-small"
    answer = predict_inputs(engine, storage, [str(stored[0].image_id)], run=summary.id, home=home)
    probabilities = [t.confidence for t in answer.results[0].top]
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)
