"""Migration 0006 matches the models and downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect

from skinctl.db import migrate


def test_downgrade_and_upgrade_again(engine):
    migrate.downgrade(engine, "0002")
    try:
        tables = set(inspect(engine).get_table_names())
        assert "training_epochs" not in tables and "image_predictions" not in tables
        columns = {c["name"] for c in inspect(engine).get_columns("model_training_metrics")}
        assert "status" not in columns and "f1_score" in columns
    finally:
        migrate.upgrade(engine)
    assert migrate.schema_drift(engine) == []
