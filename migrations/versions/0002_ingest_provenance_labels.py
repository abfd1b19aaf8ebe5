"""Ingest runs, image provenance and properties, near-duplicate pairs, label verification
state with optimistic locking, and an append-only label history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW = sa.func.current_timestamp()


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_source", sa.String(100), nullable=False),
        sa.Column("source_path", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'running'")),
        sa.Column("started_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("started_by", sa.String(100)),
        sa.Column("options", postgresql.JSONB()),
        sa.Column("counts", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'interrupted', 'failed')",
            name="ck_ingest_runs_status",
        ),
    )

    with op.batch_alter_table("ml_training_images") as table:
        table.add_column(sa.Column("width", sa.Integer()))
        table.add_column(sa.Column("height", sa.Integer()))
        table.add_column(sa.Column("format", sa.String(16)))
        table.add_column(sa.Column("byte_size", sa.BigInteger()))
        table.add_column(sa.Column("phash", sa.BigInteger()))
        table.add_column(sa.Column("phash_method", sa.String(32)))
        table.add_column(
            sa.Column(
                "quality_flags",
                postgresql.ARRAY(sa.String(32)),
                nullable=False,
                server_default=sa.text("'{}'::varchar[]"),
            )
        )
        table.add_column(sa.Column("split", sa.String(16)))
        table.add_column(sa.Column("group_key", sa.String(255)))
        table.add_column(sa.Column("ingest_run_id", sa.Integer()))
        table.create_foreign_key(
            "fk_ml_training_images_ingest_run_id_ingest_runs",
            "ingest_runs",
            ["ingest_run_id"],
            ["id"],
        )
    op.create_index("ix_ml_training_images_phash", "ml_training_images", ["phash"])
    op.create_index("ix_ml_training_images_group_key", "ml_training_images", ["group_key"])
    op.create_index(
        "ix_ml_training_images_quality_flags",
        "ml_training_images",
        ["quality_flags"],
        postgresql_using="gin",
    )

    op.create_table(
        "image_sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("dataset_source", sa.String(100), nullable=False),
        sa.Column("local_path", sa.Text(), nullable=False),
        sa.Column("split", sa.String(16)),
        sa.Column("ingest_run_id", sa.Integer()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_image_sources"),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["ml_training_images.id"],
            name="fk_image_sources_image_id_ml_training_images",
        ),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_runs.id"], name="fk_image_sources_ingest_run_id_ingest_runs"
        ),
        sa.UniqueConstraint("dataset_source", "local_path", name="uq_image_sources_dataset_path"),
    )
    op.create_index("ix_image_sources_image_id", "image_sources", ["image_id"])

    op.create_table(
        "ingest_rejections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ingest_run_id", sa.Integer(), nullable=False),
        sa.Column("dataset_source", sa.String(100), nullable=False),
        sa.Column("local_path", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_rejections"),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"],
            ["ingest_runs.id"],
            name="fk_ingest_rejections_ingest_run_id_ingest_runs",
        ),
    )
    op.create_index("ix_ingest_rejections_ingest_run_id", "ingest_rejections", ["ingest_run_id"])

    op.create_table(
        "image_duplicates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id_a", sa.Integer(), nullable=False),
        sa.Column("image_id_b", sa.Integer(), nullable=False),
        sa.Column("distance", sa.SmallInteger(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_image_duplicates"),
        sa.ForeignKeyConstraint(
            ["image_id_a"],
            ["ml_training_images.id"],
            name="fk_image_duplicates_image_id_a_ml_training_images",
        ),
        sa.ForeignKeyConstraint(
            ["image_id_b"],
            ["ml_training_images.id"],
            name="fk_image_duplicates_image_id_b_ml_training_images",
        ),
        sa.UniqueConstraint("image_id_a", "image_id_b", name="uq_image_duplicates_pair"),
        sa.CheckConstraint("image_id_a < image_id_b", name="ck_image_duplicates_ordered"),
    )
    op.create_index("ix_image_duplicates_image_id_b", "image_duplicates", ["image_id_b"])

    with op.batch_alter_table("skin_condition_labels") as table:
        table.add_column(
            sa.Column("task", sa.String(20), nullable=False, server_default=sa.text("'condition'"))
        )
        table.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default=sa.text("'dataset'"))
        )
        table.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'pending'"))
        )
        table.add_column(sa.Column("verified_by", sa.String(100)))
        table.add_column(sa.Column("verified_at", sa.DateTime()))
        table.add_column(sa.Column("updated_at", sa.DateTime()))
        table.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        table.add_column(sa.Column("image_source_id", sa.Integer()))
        table.create_foreign_key(
            "fk_skin_condition_labels_image_source_id_image_sources",
            "image_sources",
            ["image_source_id"],
            ["id"],
        )
        table.create_unique_constraint(
            "uq_skin_condition_labels_origin", ["image_source_id", "task", "condition_type"]
        )
        table.create_check_constraint(
            "ck_skin_condition_labels_source", "source IN ('dataset', 'human', 'model')"
        )
        table.create_check_constraint(
            "ck_skin_condition_labels_status", "status IN ('pending', 'verified', 'rejected')"
        )
        table.create_check_constraint(
            "ck_skin_condition_labels_task", "task IN ('condition', 'skin_type')"
        )
    op.create_index("ix_skin_condition_labels_image_id", "skin_condition_labels", ["image_id"])
    op.create_index("ix_skin_condition_labels_status", "skin_condition_labels", ["status"])

    with op.batch_alter_table("subject_metadata") as table:
        table.add_column(sa.Column("subject_id", sa.String(100)))
        table.create_unique_constraint("uq_subject_metadata_image_id", ["image_id"])

    op.create_table(
        "label_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer()),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_label_history"),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["skin_condition_labels.id"],
            name="fk_label_history_label_id_skin_condition_labels",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["ml_training_images.id"],
            name="fk_label_history_image_id_ml_training_images",
        ),
    )
    op.create_index("ix_label_history_label_id", "label_history", ["label_id"])
    op.create_index("ix_label_history_image_id", "label_history", ["image_id"])
    # Append-only, enforced by the database rather than by convention.
    op.execute(
        """
        CREATE FUNCTION label_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'label_history is append-only (% refused)', TG_OP;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER label_history_append_only BEFORE UPDATE OR DELETE ON label_history "
        "FOR EACH ROW EXECUTE FUNCTION label_history_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER label_history_append_only ON label_history")
    op.execute("DROP FUNCTION label_history_append_only()")
    op.drop_index("ix_label_history_image_id", table_name="label_history")
    op.drop_index("ix_label_history_label_id", table_name="label_history")
    op.drop_table("label_history")

    with op.batch_alter_table("subject_metadata") as table:
        table.drop_constraint("uq_subject_metadata_image_id", type_="unique")
        table.drop_column("subject_id")

    op.drop_index("ix_skin_condition_labels_status", table_name="skin_condition_labels")
    op.drop_index("ix_skin_condition_labels_image_id", table_name="skin_condition_labels")
    with op.batch_alter_table("skin_condition_labels") as table:
        table.drop_constraint("ck_skin_condition_labels_task", type_="check")
        table.drop_constraint("ck_skin_condition_labels_status", type_="check")
        table.drop_constraint("ck_skin_condition_labels_source", type_="check")
        table.drop_constraint("uq_skin_condition_labels_origin", type_="unique")
        table.drop_constraint(
            "fk_skin_condition_labels_image_source_id_image_sources", type_="foreignkey"
        )
        for column in (
            "image_source_id",
            "version",
            "updated_at",
            "verified_at",
            "verified_by",
            "status",
            "source",
            "task",
        ):
            table.drop_column(column)

    op.drop_index("ix_image_duplicates_image_id_b", table_name="image_duplicates")
    op.drop_table("image_duplicates")
    op.drop_index("ix_ingest_rejections_ingest_run_id", table_name="ingest_rejections")
    op.drop_table("ingest_rejections")
    op.drop_index("ix_image_sources_image_id", table_name="image_sources")
    op.drop_table("image_sources")

    op.drop_index("ix_ml_training_images_quality_flags", table_name="ml_training_images")
    op.drop_index("ix_ml_training_images_group_key", table_name="ml_training_images")
    op.drop_index("ix_ml_training_images_phash", table_name="ml_training_images")
    with op.batch_alter_table("ml_training_images") as table:
        table.drop_constraint("fk_ml_training_images_ingest_run_id_ingest_runs", type_="foreignkey")
        for column in (
            "ingest_run_id",
            "group_key",
            "split",
            "quality_flags",
            "phash_method",
            "phash",
            "byte_size",
            "format",
            "height",
            "width",
        ):
            table.drop_column(column)

    op.drop_table("ingest_runs")
