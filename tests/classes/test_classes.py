"""The class vocabulary: map, rename, merge and revert change the vocabulary and the labels
in one operation each, recorded with who and when, and revert puts both back."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinctl.classes.listing import list_classes
from skinctl.classes.vocabulary import load_vocabulary, map_dataset_names
from skinctl.db.models import (
    ConditionLabel,
    ImageSource,
    LabelClass,
    LabelClassChange,
    LabelHistory,
)
from skinctl.errors import Conflict
from skinctl.labels.classes import ClassVocabularyService
from tests.labels.factory import add_images


def _names(engine, label_ids):
    with Session(engine) as session:
        return [session.get_one(ConditionLabel, i).condition_type for i in label_ids]


def _register(engine, dataset, names):
    with engine.begin() as connection:
        return map_dataset_names(connection, dataset, [("condition", n) for n in names], "ingest")


@pytest.fixture
def two_sets(engine, tmp_path):
    conditions = add_images(
        engine,
        tmp_path / "store",
        [("skin_conditions", "Milia", None)] * 3 + [("skin_conditions", "Acne", None)] * 2,
    )
    acne = add_images(
        engine,
        tmp_path / "store",
        [("acne_multilabel", "Milium", None)] * 2 + [("acne_multilabel", "acne", None)] * 2,
        seed_offset=10,
    )
    _register(engine, "skin_conditions", ["Milia", "Acne"])
    seen = _register(engine, "acne_multilabel", ["Milium", "acne"])
    return conditions, acne, seen


def test_ingest_names_never_seen_become_classes_and_case_variants_map(engine, two_sets):
    _, _, seen = two_sets
    assert seen.unseen == ["condition:Milium"]  # 'acne' is the known class Acne in other case
    assert seen.canonical[("condition", "acne")] == "Acne"


def test_map_joins_milium_to_milia_and_revert_puts_it_back(engine, two_sets):
    conditions, acne, _ = two_sets
    service = ClassVocabularyService(engine, "alice")
    result = service.map("acne_multilabel", "Milium", "Milia")
    assert (result.labels_changed, result.labels_retired) == (2, 0)
    assert _names(engine, acne.labels[:2]) == ["Milia", "Milia"]
    listed = {(c.task, c.name): c for c in list_classes(engine, "condition").classes}
    assert ("condition", "Milium") not in listed  # the dataset's spelling is now a synonym
    assert listed[("condition", "Milia")].images == {"acne_multilabel": 2, "skin_conditions": 3}
    assert [(s.dataset, s.name) for s in listed[("condition", "Milia")].synonyms] == [
        ("acne_multilabel", "Milium")
    ]
    with Session(engine) as session:
        change = session.get_one(LabelClassChange, result.change_id)
        assert change.changed_by == "alice" and change.changed_at is not None
        history = session.scalars(
            select(LabelHistory).where(LabelHistory.operation_id == result.label_operation_id)
        ).all()
        assert {h.label_id for h in history} == set(acne.labels[:2])
        assert {h.action for h in history} == {"class"}
        assert (
            load_vocabulary(session, "condition").canonical("acne_multilabel", "milium") == "Milia"
        )

    back = service.revert(result.change_id)
    assert back.labels_changed == 2
    assert _names(engine, acne.labels[:2]) == ["Milium", "Milium"]
    with Session(engine) as session:
        names = set(session.scalars(select(LabelClass.name)))
        assert names == {"Milia", "Acne", "Milium"}
        assert (
            load_vocabulary(session, "condition").canonical("acne_multilabel", "Milium") == "Milium"
        )
    with pytest.raises(Conflict):
        service.revert(result.change_id)  # once only


def test_rename_keeps_old_spelling_as_synonym_and_merge_joins_classes(engine, two_sets):
    conditions, acne, _ = two_sets
    service = ClassVocabularyService(engine, "bob")
    renamed = service.rename("acne", "Acne vulgaris")
    # both datasets' acne labels follow ('acne' in another case is the same class)
    assert renamed.labels_changed == 4
    assert _names(engine, conditions.labels[3:]) == ["Acne vulgaris"] * 2
    with Session(engine) as session:
        vocabulary = load_vocabulary(session, "condition")
        assert vocabulary.canonical("acne_multilabel", "acne") == "Acne vulgaris"
    with pytest.raises(Conflict, match="merge"):
        service.rename("Milium", "Milia")
    merged = service.merge("Milium", "Milia")
    assert merged.labels_changed == 2
    assert _names(engine, acne.labels[:2]) == ["Milia", "Milia"]
    with Session(engine) as session:
        assert (
            load_vocabulary(session, "condition").canonical("acne_multilabel", "Milium") == "Milia"
        )
    # a change that is not the latest cannot be reverted: the vocabulary moved on
    with pytest.raises(Conflict, match="changed after change"):
        service.revert(renamed.change_id)
    service.revert(merged.change_id)
    service.revert(renamed.change_id)
    assert _names(engine, conditions.labels[3:]) == ["Acne", "Acne"]
    assert _names(engine, acne.labels[2:]) == ["acne", "acne"]


def test_map_rejects_a_label_its_image_already_has(engine, tmp_path):
    """One file labelled both Milium and Milia: after the map it would carry Milia twice (the
    unique origin constraint), so the Milium label is rejected instead, and revert restores it."""
    ds = add_images(engine, tmp_path / "s", [("set_a", "Milium", None)])
    with Session(engine) as session:
        source = ImageSource(image_id=ds.images[0], dataset_source="set_a", local_path="x.png")
        session.add(source)
        session.flush()
        session.get_one(ConditionLabel, ds.labels[0]).image_source_id = source.id
        session.add(
            ConditionLabel(
                image_id=ds.images[0],
                image_source_id=source.id,
                condition_type="Milia",
                task="condition",
                source="dataset",
            )
        )
        session.commit()
    service = ClassVocabularyService(engine, "carol")
    result = service.map("set_a", "Milium", "Milia")
    assert (result.labels_changed, result.labels_retired) == (0, 1)
    with Session(engine) as session:
        label = session.get_one(ConditionLabel, ds.labels[0])
        assert (label.condition_type, label.status) == ("Milium", "rejected")
    service.revert(result.change_id)
    with Session(engine) as session:
        assert session.get_one(ConditionLabel, ds.labels[0]).status == "pending"


def test_classes_cli(cli, engine, two_sets):
    listed = cli("classes", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    document = listed.json()
    assert list(document) == ["classes", "unmapped"]
    assert list(document["classes"][0]) == [
        "task",
        "name",
        "description",
        "images",
        "total_images",
        "synonyms",
    ]
    mapped = cli("classes", "map", "acne_multilabel", "Milium", "Milia", "--json")
    assert mapped.exit_code == 0, mapped.stderr
    change = mapped.json()
    assert change["labels_changed"] == 2 and change["canonical"] == "Milia"
    human = cli("classes", "list")
    assert human.exit_code == 0 and "Milia" in human.stdout
    history = cli("classes", "history", "--json")
    assert '"changed_by": "tester"' in history.stdout
    reverted = cli("classes", "revert", str(change["change_id"]))
    assert reverted.exit_code == 0 and "2 labels put back" in reverted.stdout
    again = cli("classes", "revert", str(change["change_id"]))
    assert again.exit_code != 0 and "already reverted" in again.stderr
    clash = cli("classes", "rename", "Milium", "milia")
    assert clash.exit_code != 0 and "merge" in clash.stderr
