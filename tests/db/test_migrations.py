"""Migrations run for real: round trip, every step down and up again, revision 0001's exact
schema (the four original tables), no drift between models and migrations (the one drift test),
append-only history."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from skinctl.db import migrate
from skinctl.db.engine import make_engine
from skinctl.db.models import PLAN_TABLES

PLAN_COLUMNS = {
    "ml_training_images": {
        "id": ("INTEGER", False),
        "image_url": ("VARCHAR(500)", False),
        "local_path": ("VARCHAR(255)", True),
        "image_hash": ("VARCHAR(64)", True),
        "dataset_source": ("VARCHAR(100)", False),
        "created_at": ("TIMESTAMP", True),
    },
    "skin_condition_labels": {
        "id": ("INTEGER", False),
        "image_id": ("INTEGER", True),
        "condition_type": ("VARCHAR(100)", False),
        "confidence_score": ("DOUBLE PRECISION", True),
        "severity_level": ("VARCHAR(50)", True),
        "metadata": ("JSONB", True),
        "verified": ("BOOLEAN", True),
        "created_at": ("TIMESTAMP", True),
    },
    "subject_metadata": {
        "id": ("INTEGER", False),
        "image_id": ("INTEGER", True),
        "gender": ("VARCHAR(20)", True),
        "age_range": ("VARCHAR(20)", True),
        "ethnicity": ("VARCHAR(50)", True),
        "skin_type": ("VARCHAR(50)", True),
        "fitzpatrick_scale": ("INTEGER", True),
        "additional_info": ("JSONB", True),
    },
    "model_training_metrics": {
        "id": ("INTEGER", False),
        "model_name": ("VARCHAR(100)", False),
        "version": ("VARCHAR(50)", True),
        "training_date": ("TIMESTAMP", True),
        "dataset_size": ("INTEGER", True),
        "accuracy": ("DOUBLE PRECISION", True),
        "precision_score": ("DOUBLE PRECISION", True),
        "recall": ("DOUBLE PRECISION", True),
        "f1_score": ("DOUBLE PRECISION", True),
        "training_duration_minutes": ("INTEGER", True),
        "hyperparameters": ("JSONB", True),
        "notes": ("TEXT", True),
    },
}

PLAN_INDEXES = {
    "ml_training_images": ("idx_training_images_source", ["dataset_source"]),
    "skin_condition_labels": ("idx_condition_labels_type", ["condition_type"]),
    "subject_metadata": ("idx_metadata_skin_type", ["skin_type"]),
    "model_training_metrics": ("idx_training_metrics_date", ["training_date"]),
}


@pytest.fixture
def scratch_engine(scratch_database_url):
    engine = make_engine(scratch_database_url)
    yield engine
    engine.dispose()


def _user_tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_round_trip_base_head_base_head(scratch_engine) -> None:
    migrate.upgrade(scratch_engine)
    assert migrate.current_revision(scratch_engine) == migrate.head_revision()
    assert set(PLAN_TABLES) <= _user_tables(scratch_engine)
    migrate.downgrade(scratch_engine, "base")
    assert migrate.current_revision(scratch_engine) is None
    assert _user_tables(scratch_engine) == set()
    migrate.upgrade(scratch_engine)
    assert migrate.schema_drift(scratch_engine) == []


def test_each_step_downgrades_cleanly_and_upgrades_again(scratch_engine) -> None:
    # Every migration's downgrade, one at a time, then its upgrade once more: each area's
    # migration is covered here, on a database of its own.
    revisions = [revision for revision, _down, _doc in migrate.history()]
    for revision in revisions:
        migrate.upgrade(scratch_engine, revision)
    for revision in reversed(revisions[:-1]):
        migrate.downgrade(scratch_engine, revision)
        assert migrate.current_revision(scratch_engine) == revision
    migrate.downgrade(scratch_engine, "base")
    assert _user_tables(scratch_engine) == set()
    for revision in revisions:
        migrate.upgrade(scratch_engine, revision)
        assert migrate.current_revision(scratch_engine) == revision
    assert migrate.schema_drift(scratch_engine) == []


def test_revision_0001_is_exactly_the_four_original_tables(scratch_engine) -> None:
    migrate.upgrade(scratch_engine, "0001")
    inspector = inspect(scratch_engine)
    assert _user_tables(scratch_engine) == set(PLAN_TABLES)
    for table, expected in PLAN_COLUMNS.items():
        columns = {c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)}
        assert columns == expected, table
        assert inspector.get_pk_constraint(table)["constrained_columns"] == ["id"]
        name, cols = PLAN_INDEXES[table]
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table)}
        assert indexes.get(name) == cols, table

    unique = inspector.get_unique_constraints("ml_training_images")
    assert [u["column_names"] for u in unique] == [["image_hash"]]
    checks = inspector.get_check_constraints("subject_metadata")
    assert len(checks) == 1 and "fitzpatrick_scale" in checks[0]["sqltext"]
    for table in ("skin_condition_labels", "subject_metadata"):
        fks = inspector.get_foreign_keys(table)
        assert [(f["constrained_columns"], f["referred_table"]) for f in fks] == [
            (["image_id"], "ml_training_images")
        ]
    with scratch_engine.connect() as connection:
        defaults = dict(
            connection.execute(
                text(
                    "SELECT table_name || '.' || column_name, column_default FROM information_schema.columns "
                    "WHERE column_default IS NOT NULL AND table_schema = 'public' AND column_name <> 'id'"
                )
            ).all()
        )
    assert defaults == {
        "ml_training_images.created_at": "CURRENT_TIMESTAMP",
        "skin_condition_labels.created_at": "CURRENT_TIMESTAMP",
        "skin_condition_labels.verified": "false",
        "model_training_metrics.training_date": "CURRENT_TIMESTAMP",
    }


def test_original_constraints_hold_at_head(engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ml_training_images (image_url, image_hash, dataset_source) VALUES ('file:///a', :h, 'd')"
            ),
            {"h": "a" * 64},
        )
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ml_training_images (image_url, image_hash, dataset_source) VALUES ('file:///b', :h, 'd')"
            ),
            {"h": "a" * 64},
        )
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("INSERT INTO subject_metadata (fitzpatrick_scale) VALUES (7)"))


def test_head_schema_matches_models(engine) -> None:
    """The one schema-drift test: the models (every area's, in skinctl/db/models.py) and the
    migrations at head describe the same schema."""
    assert migrate.schema_drift(engine) == []


def test_label_history_is_append_only(engine) -> None:
    with engine.begin() as connection:
        image_id = connection.execute(
            text(
                "INSERT INTO ml_training_images (image_url, dataset_source) VALUES ('file:///x', 'd') RETURNING id"
            )
        ).scalar_one()
        label_id = connection.execute(
            text(
                "INSERT INTO skin_condition_labels (image_id, condition_type) VALUES (:i, 'acne') RETURNING id"
            ),
            {"i": image_id},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO label_history (label_id, action, changed_by) VALUES (:l, 'verify', 'me')"
            ),
            {"l": label_id},
        )
    for statement in ("UPDATE label_history SET changed_by = 'other'", "DELETE FROM label_history"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
