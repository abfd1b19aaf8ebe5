"""One vocabulary of classes (canonical names per task, per-dataset synonyms, every change
recorded) and evaluations of a run's model on data it never trained on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _created() -> list[sa.Column]:
    return [
        sa.Column("created_by", sa.String(100)),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
    ]


def _metrics(fk_name: str) -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "evaluation_id",
            sa.Integer(),
            sa.ForeignKey(
                "model_evaluations.id",
                ondelete="CASCADE",
                name=fk_name,
            ),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "label_classes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("description", sa.Text()),
        *_created(),
        sa.UniqueConstraint("task", "name_key", name="uq_label_classes_task_name_key"),
        sa.CheckConstraint("task IN ('condition', 'skin_type')", name="ck_label_classes_task"),
    )
    op.create_table(
        "label_class_synonyms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "class_id",
            sa.Integer(),
            sa.ForeignKey(
                "label_classes.id",
                ondelete="CASCADE",
                name="fk_label_class_synonyms_class_id_label_classes",
            ),
            nullable=False,
        ),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("dataset_source", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        *_created(),
        sa.UniqueConstraint(
            "task", "dataset_source", "name_key", name="uq_label_class_synonyms_dataset_name"
        ),
    )
    op.create_index("ix_label_class_synonyms_class_id", "label_class_synonyms", ["class_id"])
    op.create_table(
        "label_class_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("dataset_source", sa.String(100)),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("canonical", sa.String(100)),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.Column("label_operation_id", sa.String(36)),
        sa.Column("labels_changed", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column(
            "changed_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column(
            "reverts_change_id",
            sa.Integer(),
            sa.ForeignKey(
                "label_class_changes.id",
                name="fk_label_class_changes_reverts_change_id_label_class_changes",
            ),
        ),
        sa.Column("note", sa.Text()),
    )
    # The classes the labels already use: one canonical name per task and spelling ignoring
    # case (the most common spelling wins).
    op.execute(
        """
        INSERT INTO label_classes (task, name, name_key, created_by)
        SELECT DISTINCT ON (task, lower(condition_type)) task, condition_type,
               lower(condition_type), 'migration 0011'
        FROM (SELECT task, condition_type, count(*) AS n FROM skin_condition_labels
              WHERE status <> 'rejected' AND condition_type <> ''
              GROUP BY task, condition_type) AS used
        ORDER BY task, lower(condition_type), n DESC, condition_type
        """
    )
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey(
                "model_training_metrics.id",
                ondelete="CASCADE",
                name="fk_model_evaluations_run_id_model_training_metrics",
            ),
            nullable=False,
        ),
        sa.Column("datasets", postgresql.ARRAY(sa.String(100)), nullable=False),
        sa.Column("evaluated_by", sa.String(100)),
        sa.Column(
            "evaluated_at",
            sa.DateTime(),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("exact_copies_left_out", sa.Integer(), nullable=False),
        sa.Column("near_copies_left_out", sa.Integer(), nullable=False),
        sa.Column("left_out", postgresql.JSONB()),
        sa.Column("accuracy", sa.Float()),
        sa.Column("accuracy_low", sa.Float()),
        sa.Column("accuracy_high", sa.Float()),
        sa.Column("f1_macro", sa.Float()),
        sa.Column("f1_low", sa.Float()),
        sa.Column("f1_high", sa.Float()),
        sa.Column("majority_rate", sa.Float()),
        sa.Column("metrics", postgresql.JSONB()),
        sa.Column("confusion_matrix", postgresql.JSONB()),
        sa.Column("class_map", postgresql.JSONB()),
    )
    op.create_index("ix_model_evaluations_run_id", "model_evaluations", ["run_id"])
    op.create_table(
        "evaluation_class_metrics",
        *_metrics("fk_evaluation_class_metrics_evaluation_id_model_evaluations"),
        sa.Column("class_name", sa.String(100), nullable=False),
        sa.Column("precision", sa.Float()),
        sa.Column("recall", sa.Float()),
        sa.Column("f1", sa.Float()),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float()),
        sa.UniqueConstraint(
            "evaluation_id", "class_name", name="uq_evaluation_class_metrics_evaluation_class"
        ),
    )
    op.create_table(
        "evaluation_group_metrics",
        *_metrics("fk_evaluation_group_metrics_evaluation_id_model_evaluations"),
        sa.Column("group_by", sa.String(30), nullable=False),
        sa.Column("group_value", sa.String(100), nullable=False),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float()),
        sa.Column("accuracy_low", sa.Float()),
        sa.Column("accuracy_high", sa.Float()),
        sa.Column("f1_macro", sa.Float()),
        sa.Column("majority_rate", sa.Float()),
        sa.UniqueConstraint(
            "evaluation_id",
            "group_by",
            "group_value",
            name="uq_evaluation_group_metrics_evaluation_group",
        ),
    )


def downgrade() -> None:
    op.drop_table("evaluation_group_metrics")
    op.drop_table("evaluation_class_metrics")
    op.drop_index("ix_model_evaluations_run_id", table_name="model_evaluations")
    op.drop_table("model_evaluations")
    op.drop_table("label_class_changes")
    op.drop_index("ix_label_class_synonyms_class_id", table_name="label_class_synonyms")
    op.drop_table("label_class_synonyms")
    op.drop_table("label_classes")
