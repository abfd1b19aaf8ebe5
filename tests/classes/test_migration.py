"""Migration 0011: seeds the vocabulary from the labels already stored (the commonest spelling
of each class wins), matches the models, and downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from skinctl.db import migrate
from skinctl.db.models import LabelClass
from tests.labels.factory import add_images

NEW_TABLES = {
    "label_classes",
    "label_class_synonyms",
    "label_class_changes",
    "model_evaluations",
    "evaluation_class_metrics",
    "evaluation_group_metrics",
}


def test_upgrade_seeds_classes_and_downgrade_removes_the_tables(engine, tmp_path):
    add_images(
        engine,
        tmp_path / "s",
        [("a", "Acne", None), ("a", "Acne", None), ("b", "acne", None), ("b", "Milium", None)],
    )
    migrate.downgrade(engine, "0010")
    try:
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
    finally:
        migrate.upgrade(engine)
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    assert migrate.schema_drift(engine) == []
    with Session(engine) as session:
        seeded = session.execute(
            select(LabelClass.task, LabelClass.name, LabelClass.created_by).order_by(
                LabelClass.name
            )
        ).all()
        assert seeded == [
            ("condition", "Acne", "migration 0011"),
            ("condition", "Milium", "migration 0011"),
        ]
        session.execute(text("DELETE FROM label_classes"))
        session.commit()
