"""Training selects canonical classes across datasets, and --min-images leaves small ones out."""

from __future__ import annotations

from sqlalchemy.orm import Session

from skinctl.classes.vocabulary import map_dataset_names
from skinctl.db.models import LabelClass, LabelClassSynonym
from skinctl.labels.classes import ClassVocabularyService
from skinctl.train.dataset import select_examples
from tests.labels.factory import add_images


def test_selection_joins_datasets_names_and_drops_small_classes(engine, tmp_path):
    add_images(
        engine,
        tmp_path / "s",
        [("one", "Milia", None)] * 4 + [("one", "Acne", None)] * 4 + [("one", "Rare", None)],
    )
    add_images(
        engine,
        tmp_path / "s",
        [("two", "MILIUM", None)] * 3 + [("two", "acne", None)] * 2,
        seed_offset=20,
    )
    with engine.begin() as connection:
        map_dataset_names(connection, "one", [("condition", "Milia"), ("condition", "Acne")], None)
    # only a synonym (labels of 'two' not rewritten): training still joins the names
    ClassVocabularyService(engine, "t").create("Rare")
    with Session(engine) as session:
        milia = session.query(LabelClass).filter_by(name="Milia").one()
        session.add(
            LabelClassSynonym(
                class_id=milia.id,
                task="condition",
                dataset_source="two",
                name="MILIUM",
                name_key="milium",
            )
        )
        session.commit()
        selection = select_examples(session, "condition", datasets=["one", "two"], min_images=2)
    counts = {c: sum(e.label == c for e in selection.examples) for c in selection.classes}
    assert counts == {"Acne": 6, "Milia": 7}
    assert selection.small_classes == {"Rare": 1}
    assert selection.left_out == {"class with fewer than 2 images": 1}


def test_train_run_says_which_classes_were_too_small(cli, engine, tmp_path):
    add_images(
        engine,
        tmp_path / "s",
        [("one", "Milia", None)] * 6 + [("one", "Acne", None)] * 6 + [("one", "Rare", None)] * 2,
    )
    result = cli(
        "train",
        "run",
        "--task",
        "condition",
        "--dataset",
        "one",
        "--min-images",
        "3",
        "--epochs",
        "1",
        "--image-size",
        "16",
        "--batch-size",
        "8",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert "classes left out (fewer than 3 images): Rare (2)" in result.stderr
    run = result.json()
    assert run["hyperparameters"]["classes"] == ["Acne", "Milia"]
    assert run["hyperparameters"]["small_classes"] == {"Rare": 2}
