"""`skinctl predict` answers each condition's confidence and, where a severity model grades
that condition, its level and confidence, in one answer."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from skinctl.storage.local import LocalStorage
from tests.conftest import truncate_all
from tests.train.conftest import cli_for
from tests.train.factory import CLASS_STYLE, add_image, draw_image

SMALL = ("--epochs", "1", "--image-size", "24", "--batch-size", "16", "--json")


@pytest.fixture(scope="module")
def runs(session_engine, database_url, module_home, tmp_path_factory):
    truncate_all(session_engine)
    storage = LocalStorage(str(module_home / "images"))
    rng = np.random.default_rng(5)
    with Session(session_engine) as session, session.begin():
        for n in range(16):
            for label in CLASS_STYLE:
                add_image(
                    session,
                    storage,
                    draw_image(label, rng, 32),
                    labels=[label],
                    severity=str(n % 2) if label == "acne" else None,
                )
    cli = cli_for(database_url, module_home)
    condition = cli("train", "run", "--task", "condition", *SMALL)
    assert condition.exit_code == 0, condition.stderr
    severity = cli("train", "run", "--task", "severity", *SMALL)
    assert severity.exit_code == 0, severity.stderr
    photo = tmp_path_factory.mktemp("photos") / "acne.jpg"
    photo.write_bytes(draw_image("acne", rng, 32))
    return {
        "cli": cli,
        "condition": condition.json()["id"],
        "severity": severity.json()["id"],
        "photo": str(photo),
    }


def test_predict_adds_the_severity_of_the_graded_condition(runs):
    cli = runs["cli"]
    result = cli("predict", runs["photo"], "--run", str(runs["condition"]), "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert document["severity_run"] == runs["severity"]
    assert document["severity_condition"] == "acne"
    answer = document["results"][0]
    (graded,) = answer["severities"]
    assert list(graded) == ["condition", "condition_confidence", "level", "confidence", "run"]
    assert graded["condition"] == "acne" and graded["level"] in {"0", "1"}
    assert 0.5 <= graded["confidence"] <= 1.0
    confidence = {t["class"]: t["confidence"] for t in answer["top"]}
    assert graded["condition_confidence"] == pytest.approx(confidence["acne"])
    human = cli("predict", runs["photo"], "--run", str(runs["condition"]), env={"COLUMNS": "200"})
    assert "level" in human.stdout


def test_no_severity_and_a_wrong_severity_run(runs):
    cli = runs["cli"]
    plain = cli(
        "predict", runs["photo"], "--run", str(runs["condition"]), "--no-severity", "--json"
    )
    assert plain.exit_code == 0
    assert "severities" not in plain.json()["results"][0]
    assert "severity_run" not in plain.json()
    wrong = cli(
        "predict", runs["photo"], "--run", str(runs["condition"]),
        "--severity-run", str(runs["condition"]),
    )  # fmt: skip
    assert wrong.exit_code == 2 and "not a severity run" in wrong.stderr


def test_the_promoted_severity_run_comes_first_and_must_be_a_severity_run(runs, session_engine):
    from skinctl.train.predict import find_severity_run

    classes = list(CLASS_STYLE)
    severity, condition = runs["severity"], runs["condition"]
    assert find_severity_run(session_engine, classes) == (severity, "acne")
    assert find_severity_run(session_engine, classes, promoted=severity) == (severity, "acne")
    # a promoted run of another task is not a severity model: the newest severity run answers
    assert find_severity_run(session_engine, classes, promoted=condition) == (severity, "acne")
    assert find_severity_run(session_engine, ["eczema", "rosacea"]) is None
