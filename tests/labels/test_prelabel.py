"""`skinctl label prelabel`: a run's answers for unlabelled images as pending model labels
(confidence_score, severity_level), most uncertain first in the queue, and `label stats`
says how often people accept them."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, LabelHistory
from skinctl.labels import LabelFilter, LabelService
from skinctl.storage.local import LocalStorage
from tests.conftest import truncate_all
from tests.train.conftest import cli_for
from tests.train.factory import CLASS_STYLE, add_image, draw_image

SMALL = ("--epochs", "1", "--image-size", "24", "--batch-size", "16", "--json")


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    return tmp_path_factory.mktemp("prelabel-home")


@pytest.fixture(scope="module")
def prelabelled(session_engine, database_url, module_home):
    engine = session_engine
    truncate_all(engine)
    storage = LocalStorage(str(module_home / "images"))
    rng = np.random.default_rng(8)
    with Session(engine) as session, session.begin():
        for n in range(14):
            for label in CLASS_STYLE:
                add_image(
                    session,
                    storage,
                    draw_image(label, rng, 32),
                    labels=[label],
                    severity=str(n % 2) if label == "acne" else None,
                )
        fresh = [
            add_image(session, storage, draw_image(label, rng, 32), labels=[], dataset="fresh")
            for label in list(CLASS_STYLE) * 3
        ]
    cli = cli_for(database_url, module_home)
    condition = cli("train", "run", "--task", "condition", "--dataset", "generated", *SMALL)
    assert condition.exit_code == 0, condition.stderr
    severity = cli("train", "run", "--task", "severity", *SMALL)
    assert severity.exit_code == 0, severity.stderr
    run_id = condition.json()["id"]
    result = cli("label", "prelabel", "--run", str(run_id), "--dataset", "fresh", "--json")
    assert result.exit_code == 0, result.stderr + str(result.exception)
    return {
        "cli": cli,
        "engine": engine,
        "run": run_id,
        "severity_run": severity.json()["id"],
        "fresh": [s.image_id for s in fresh],
        "result": result.json(),
    }


def test_prelabel_writes_pending_model_labels_with_confidence(prelabelled):
    result, engine = prelabelled["result"], prelabelled["engine"]
    assert list(result) == [
        "run",
        "task",
        "datasets",
        "unlabelled",
        "labelled",
        "classes",
        "mean_confidence",
        "severity_run",
        "with_severity",
        "operation_id",
    ]
    assert result["unlabelled"] == result["labelled"] == 9
    assert result["severity_run"] == prelabelled["severity_run"]
    with Session(engine) as session:
        labels = session.scalars(
            select(ConditionLabel).where(ConditionLabel.image_id.in_(prelabelled["fresh"]))
        ).all()
        history = session.scalars(
            select(LabelHistory).where(LabelHistory.operation_id == result["operation_id"])
        ).all()
    assert len(labels) == 9 and len(history) == 9
    assert {(lb.source, lb.status, lb.verified) for lb in labels} == {("model", "pending", False)}
    assert all(0 < lb.confidence_score <= 1 for lb in labels)
    assert all(lb.metadata_["run_id"] == prelabelled["run"] for lb in labels)
    for label in labels:  # the severity model grades acne only
        assert (label.severity_level is not None) == (label.condition_type == "acne")
    assert result["with_severity"] == sum(lb.condition_type == "acne" for lb in labels)
    assert {h.action for h in history} == {"create"}


def test_again_adds_nothing(prelabelled):
    cli, run = prelabelled["cli"], prelabelled["run"]
    again = cli("label", "prelabel", "--run", str(run), "--dataset", "fresh", "--json")
    assert again.exit_code == 0 and again.json()["labelled"] == 0


def test_queue_shows_most_uncertain_first_and_stats_report_acceptance(prelabelled):
    engine, cli = prelabelled["engine"], prelabelled["cli"]
    service = LabelService(engine, "reviewer")
    queue = service.queue_items(LabelFilter(dataset="fresh", status="pending"))
    with Session(engine) as session:
        confidence = {
            lb.image_id: lb.confidence_score
            for lb in session.scalars(
                select(ConditionLabel).where(ConditionLabel.source == "model")
            )
        }
    shown = [confidence[key.image_id] for key in queue]
    assert len(shown) == 9 and shown == sorted(shown)
    # accept the first model label, change the second to another class
    first, second = queue[0], queue[1]
    first_label = service.labels_of_image(first.image_id)[0]
    service.decide(first.image_id, "condition", first_label.condition_type)
    second_label = service.labels_of_image(second.image_id)[0]
    other = next(c for c in CLASS_STYLE if c != second_label.condition_type)
    service.decide(second.image_id, "condition", other)
    stats = cli("label", "stats", "--json").json()
    assert stats["model_acceptance"] == 0.5
    (row,) = stats["model_labels"]
    assert row == {
        "run": prelabelled["run"],
        "labels": 9,
        "accepted": 1,
        "rejected": 1,
        "pending": 7,
        "acceptance": 0.5,
    }
    human = cli("label", "stats", env={"COLUMNS": "200"})
    assert "people accept the model's label: 50.0%" in human.stdout
