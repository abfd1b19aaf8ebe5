from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from skinctl.db.models import ConditionLabel, ImagePrediction, LabelHistory, TrainingRun
from skinctl.errors import Conflict, NotFound
from skinctl.labels import LabelFilter, LabelService
from skinctl.labels.views import DatasetStats, ModelSuggestion
from tests.labels.factory import add_duplicate, add_images, add_label


@pytest.fixture
def data(engine, tmp_path):
    return add_images(
        engine,
        tmp_path / "store",
        [
            ("derm", "acne", "train"),
            ("derm", "eczema", "train"),
            ("derm", "acne", "valid"),
            ("other", "rosacea", None),
        ],
    )


def history(engine, label_id):
    with Session(engine) as session:
        return session.scalars(
            select(LabelHistory).where(LabelHistory.label_id == label_id).order_by(LabelHistory.id)
        ).all()


def test_verify_records_history_and_keeps_verified_in_sync(engine, data):
    alice = LabelService(engine, "alice")
    result = alice.verify(data.labels[0], version=1)
    assert result.label.status == "verified" and result.label.verified is True
    assert result.label.verified_by == "alice" and result.label.version == 2
    rows = history(engine, data.labels[0])
    assert [(r.action, r.changed_by) for r in rows] == [("verify", "alice")]
    assert rows[0].before["status"] == "pending" and rows[0].after["status"] == "verified"
    assert rows[0].before["version"] == 1 and rows[0].after["version"] == 2
    # verifying again changes nothing: no new version, no history row
    assert alice.verify(data.labels[0]).label.version == 2
    assert len(history(engine, data.labels[0])) == 1
    rejected = alice.reject(data.labels[0], version=2, reason="blurry").label
    assert (rejected.status, rejected.verified) == ("rejected", False)
    assert history(engine, data.labels[0])[-1].note == "blurry"


def test_history_table_is_append_only(engine, data):
    LabelService(engine, "alice").verify(data.labels[0])
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text("UPDATE label_history SET changed_by = 'mallory'"))


def test_stale_version_is_a_conflict_naming_the_other_writer(engine, data):
    alice, bob = LabelService(engine, "alice"), LabelService(engine, "bob")
    seen = alice.get(data.labels[1]).version
    bob.reject(data.labels[1], version=seen, reason="not eczema")
    with pytest.raises(Conflict, match=r"Label \d+ was changed by bob since you saw version 1"):
        alice.verify(data.labels[1], version=seen)
    with Session(engine) as session:
        assert session.get(ConditionLabel, data.labels[1]).status == "rejected"


def test_two_sessions_racing_on_one_version_one_wins(engine, data):
    """Both read version 1 and write at the same moment: the row lock makes the second UPDATE
    see version 2, so exactly one succeeds and the other gets Conflict (never a lost update)."""
    label_id = data.labels[2]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def write(user: str, status: str) -> None:
        service = LabelService(engine, user)
        with Session(engine) as session:
            label = session.get(ConditionLabel, label_id)
            barrier.wait()
            label.status = status
            label.verified = status == "verified"
            try:
                service._record(session, "op-" + user, label, status, {"version": 1})
                session.commit()
                outcomes[user] = "ok"
            except Conflict:
                outcomes[user] = "conflict"

    threads = [
        threading.Thread(target=write, args=(u, s))
        for u, s in (("alice", "verified"), ("bob", "rejected"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["conflict", "ok"]
    with Session(engine) as session:
        label = session.get(ConditionLabel, label_id)
        winner = next(u for u, o in outcomes.items() if o == "ok")
        assert label.version == 2
        assert label.status == {"alice": "verified", "bob": "rejected"}[winner]
    assert [r.changed_by for r in history(engine, label_id)] == [winner]


def test_set_keeps_the_dataset_label_and_adds_a_human_one(engine, data):
    alice = LabelService(engine, "alice")
    result = alice.set_condition(data.images[1], "psoriasis", "mild")
    human = result.label
    assert (
        human.source,
        human.status,
        human.verified,
        human.condition_type,
        human.severity_level,
    ) == (
        "human",
        "verified",
        True,
        "psoriasis",
        "mild",
    )
    labels = {lb.id: lb for lb in alice.labels_of_image(data.images[1])}
    original = labels[data.labels[1]]
    assert (original.condition_type, original.source, original.status, original.verified) == (
        "eczema",
        "dataset",
        "rejected",
        False,
    )
    actions = [(h.action, h.label_id) for h in alice.history(image_id=data.images[1])]
    assert actions == [("create", human.id), ("supersede", data.labels[1])]
    assert len({h.operation_id for h in alice.history(image_id=data.images[1])}) == 1
    # setting the class the dataset had brings that row back rather than adding another
    again = alice.set_condition(data.images[1], "eczema").label
    assert again.id == data.labels[1] and again.status == "verified"
    statuses = {lb.condition_type: lb.status for lb in alice.labels_of_image(data.images[1])}
    assert statuses == {"eczema": "verified", "psoriasis": "rejected"}


def test_set_with_a_stale_seen_version_conflicts(engine, data):
    alice, bob = LabelService(engine, "alice"), LabelService(engine, "bob")
    seen = {data.labels[0]: 1}
    bob.verify(data.labels[0])
    with pytest.raises(Conflict):
        alice.set_condition(data.images[0], "eczema", seen=seen)
    assert [lb.condition_type for lb in alice.labels_of_image(data.images[0])] == ["acne"]


def test_undo_reverts_a_whole_operation_after_commit(engine, data):
    alice = LabelService(engine, "alice")
    alice.verify(data.labels[0])
    alice.set_condition(data.images[0], "rosacea", "severe")
    undone = alice.undo(image_id=data.images[0])
    assert {lb.condition_type: lb.status for lb in undone.labels} == {
        "acne": "verified",
        "rosacea": "rejected",
    }
    labels = {lb.condition_type: lb for lb in alice.labels_of_image(data.images[0])}
    assert labels["acne"].status == "verified" and labels["acne"].verified_by == "alice"
    # the next undo goes one step further back: acne is pending again
    alice.undo(image_id=data.images[0])
    acne = alice.get(data.labels[0])
    assert (acne.status, acne.verified, acne.verified_by, acne.verified_at) == (
        "pending",
        False,
        None,
        None,
    )
    entries = alice.history(image_id=data.images[0])
    assert [h.action for h in entries] == ["verify", "create", "supersede", "undo", "undo", "undo"]
    with pytest.raises(NotFound, match="Nothing of yours to undo"):
        alice.undo(image_id=data.images[0])


def test_undo_only_touches_my_changes_and_refuses_over_someone_elses(engine, data):
    alice, bob = LabelService(engine, "alice"), LabelService(engine, "bob")
    alice.verify(data.labels[3])
    with pytest.raises(NotFound):
        bob.undo(label_id=data.labels[3])
    bob.set_severity(data.labels[3], "moderate")
    with pytest.raises(Conflict, match="changed by bob"):
        alice.undo(label_id=data.labels[3])
    assert alice.get(data.labels[3]).status == "verified"


def test_queue_puts_conflicts_first_then_id(engine, data, tmp_path):
    service = LabelService(engine, "alice")
    assert service.queue() == data.labels  # no scores, no conflicts: id order
    extra = add_label(engine, data.images[3], "acne")  # image 4 now carries rosacea and acne
    more = add_images(engine, tmp_path / "store", [("derm", "eczema", "train")], seed_offset=10)
    add_duplicate(engine, data.images[0], more.images[0])  # acne vs eczema near-duplicates
    order = service.queue()
    first = {data.labels[0], data.labels[3], extra, more.labels[0]}
    assert set(order[:4]) == first and order[:4] == sorted(first)
    assert order[4:] == [data.labels[1], data.labels[2]]
    listed = service.list_labels(LabelFilter(status="pending"), order="suspect", limit=2)
    assert [lb.id for lb in listed] == order[:2]


def test_queue_uses_model_scores_from_the_trainers_predictions(engine, data):
    service = LabelService(engine, "alice")
    with Session(engine) as session:
        run = TrainingRun(model_name="condition-cnn", version="1", task="condition")
        session.add(run)
        session.flush()
        for image_id, given, predicted, confidence, score in (
            (data.images[2], "acne", "eczema", 0.1, 0.9),
            (data.images[1], "eczema", "acne", 0.6, 0.2),
        ):
            session.add(
                ImagePrediction(
                    run_id=run.id,
                    image_id=image_id,
                    origin="held-out-test",
                    given_labels=[given],
                    predicted_label=predicted,
                    probabilities={predicted: 1 - confidence, given: confidence},
                    self_confidence=confidence,
                    mislabel_score=score,
                )
            )
        session.commit()
        run_id = run.id
    assert service.queue()[:2] == [data.labels[2], data.labels[1]]
    assert service.suggestion(data.images[2]) == ModelSuggestion("eczema", 0.1, 0.9, run_id)
    assert service.suggestion(data.images[0]) is None
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM image_predictions"))
    assert service.suggestion(data.images[2]) is None
    assert service.queue() == data.labels  # no scores, no conflicts: id order again


def test_stats_verified_share_and_agreement(engine, data):
    alice = LabelService(engine, "alice")
    alice.verify(data.labels[0])
    alice.reject(data.labels[2])
    alice.set_condition(data.images[1], "psoriasis")
    report = alice.stats()
    derm = next(d for d in report.datasets if d.dataset == "derm")
    # derm: acne x2 (1 verified, 1 rejected), eczema (rejected by the correction), psoriasis (human, verified)
    assert derm == DatasetStats(
        "derm",
        labels=4,
        verified=2,
        verified_share=0.5,
        agreement=round(1 / 3, 4),
        reviewed_dataset_labels=3,
    )
    acne = next(c for c in report.classes if c.condition == "acne")
    assert (acne.verified, acne.rejected, acne.pending, acne.agreement) == (1, 1, 0, 0.5)
    other = next(d for d in report.datasets if d.dataset == "other")
    assert other.agreement is None and other.verified_share == 0.0
    assert report.agreement == round(1 / 3, 4)


def test_progress_counts_verified_of_all(engine, data):
    service = LabelService(engine, "alice")
    service.verify(data.labels[0])
    assert service.progress() == (1, 4)
    assert service.progress(LabelFilter(dataset="derm", status="pending")) == (1, 3)


def test_migration_0004_downgrades_and_upgrades(engine):
    from sqlalchemy import inspect

    from skinctl.db import migrate

    migrate.downgrade(engine, "0002")
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("label_history")}
        assert "operation_id" not in columns
    finally:
        migrate.upgrade(engine)
    assert "operation_id" in {c["name"] for c in inspect(engine).get_columns("label_history")}
