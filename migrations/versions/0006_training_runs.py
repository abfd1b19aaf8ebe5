"""Training runs in detail: task, status, model URI, confidence intervals on
model_training_metrics; per-epoch history, per-class and per-group metrics, the split of every
image in a run, and out-of-sample image predictions (the "likely mislabeled" score).

Revision ID: 0006
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0008"
branch_labels = None
depends_on = None

NOW = sa.func.current_timestamp()
RUNS = "model_training_metrics"


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], [f"{RUNS}.id"], name=f"fk_{table}_run_id_{RUNS}", ondelete="CASCADE"
    )


def _image_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["image_id"],
        ["ml_training_images.id"],
        name=f"fk_{table}_image_id_ml_training_images",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table(RUNS) as table:
        table.add_column(sa.Column("task", sa.String(20)))
        table.add_column(sa.Column("architecture", sa.String(50)))
        # Rows written before this migration were finished runs.
        table.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'finished'"))
        )
        table.add_column(sa.Column("model_uri", sa.String(500)))
        table.add_column(sa.Column("seed", sa.Integer()))
        table.add_column(sa.Column("epochs_run", sa.Integer()))
        table.add_column(sa.Column("best_epoch", sa.Integer()))
        table.add_column(sa.Column("majority_rate", sa.Float()))
        table.add_column(sa.Column("metrics", postgresql.JSONB()))
        table.add_column(sa.Column("confusion_matrix", postgresql.JSONB()))
        table.add_column(sa.Column("started_by", sa.String(100)))
        table.add_column(sa.Column("finished_at", sa.DateTime()))
        table.create_check_constraint(
            f"ck_{RUNS}_status", "status IN ('running', 'finished', 'interrupted', 'failed')"
        )
    op.create_index(f"ix_{RUNS}_task", RUNS, ["task"])

    op.create_table(
        "training_epochs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float()),
        sa.Column("val_loss", sa.Float()),
        sa.Column("train_accuracy", sa.Float()),
        sa.Column("val_accuracy", sa.Float()),
        sa.Column("learning_rate", sa.Float()),
        sa.Column("seconds", sa.Float()),
        sa.Column("metrics", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_training_epochs"),
        _run_fk("training_epochs"),
        sa.UniqueConstraint("run_id", "epoch", name="uq_training_epochs_run_epoch"),
    )

    op.create_table(
        "training_class_metrics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("class_name", sa.String(100), nullable=False),
        sa.Column("precision", sa.Float()),
        sa.Column("recall", sa.Float()),
        sa.Column("f1", sa.Float()),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_training_class_metrics"),
        _run_fk("training_class_metrics"),
        sa.UniqueConstraint("run_id", "class_name", name="uq_training_class_metrics_run_class"),
    )

    op.create_table(
        "training_group_metrics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("group_by", sa.String(30), nullable=False),
        sa.Column("group_value", sa.String(100), nullable=False),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float()),
        sa.Column("accuracy_low", sa.Float()),
        sa.Column("accuracy_high", sa.Float()),
        sa.Column("f1_macro", sa.Float()),
        sa.Column("majority_rate", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_training_group_metrics"),
        _run_fk("training_group_metrics"),
        sa.UniqueConstraint(
            "run_id", "group_by", "group_value", name="uq_training_group_metrics_run_group"
        ),
    )

    op.create_table(
        "training_run_splits",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("split_group", sa.Integer()),
        sa.PrimaryKeyConstraint("run_id", "image_id", name="pk_training_run_splits"),
        _run_fk("training_run_splits"),
        _image_fk("training_run_splits"),
        sa.CheckConstraint(
            "split IN ('train', 'val', 'test')", name="ck_training_run_splits_split"
        ),
    )
    op.create_index("ix_training_run_splits_image_id", "training_run_splits", ["image_id"])

    op.create_table(
        "image_predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("fold", sa.Integer()),
        sa.Column("given_labels", postgresql.ARRAY(sa.String(100)), nullable=False),
        sa.Column("predicted_label", sa.String(100), nullable=False),
        sa.Column("probabilities", postgresql.JSONB(), nullable=False),
        sa.Column("self_confidence", sa.Float(), nullable=False),
        sa.Column("mislabel_score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_image_predictions"),
        _run_fk("image_predictions"),
        _image_fk("image_predictions"),
        sa.UniqueConstraint("run_id", "image_id", name="uq_image_predictions_run_image"),
    )
    op.create_index("ix_image_predictions_image_id", "image_predictions", ["image_id"])
    op.create_index("ix_image_predictions_mislabel_score", "image_predictions", ["mislabel_score"])


def downgrade() -> None:
    op.drop_index("ix_image_predictions_mislabel_score", table_name="image_predictions")
    op.drop_index("ix_image_predictions_image_id", table_name="image_predictions")
    op.drop_table("image_predictions")
    op.drop_index("ix_training_run_splits_image_id", table_name="training_run_splits")
    op.drop_table("training_run_splits")
    op.drop_table("training_group_metrics")
    op.drop_table("training_class_metrics")
    op.drop_table("training_epochs")
    op.drop_index(f"ix_{RUNS}_task", table_name=RUNS)
    with op.batch_alter_table(RUNS) as table:
        table.drop_constraint(f"ck_{RUNS}_status", type_="check")
        for column in (
            "finished_at",
            "started_by",
            "confusion_matrix",
            "metrics",
            "majority_rate",
            "best_epoch",
            "epochs_run",
            "seed",
            "model_uri",
            "status",
            "architecture",
            "task",
        ):
            table.drop_column(column)
