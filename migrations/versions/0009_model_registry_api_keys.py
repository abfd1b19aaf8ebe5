"""The model registry (which run serves each task, with history) and API keys for `skinctl serve`.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

NOW = sa.func.current_timestamp()


def upgrade() -> None:
    op.create_table(
        "model_promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("alias", sa.String(50), nullable=False, server_default=sa.text("'production'")),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model_uri", sa.String(500), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("checksum_source", sa.String(16), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("note", sa.Text()),
        sa.Column("promoted_by", sa.String(100), nullable=False),
        sa.Column("promoted_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("demoted_by", sa.String(100)),
        sa.Column("demoted_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_model_promotions"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["model_training_metrics.id"],
            name="fk_model_promotions_run_id_model_training_metrics",
        ),
        sa.CheckConstraint(
            "task IN ('condition', 'severity', 'skin-type')", name="ck_model_promotions_task"
        ),
        sa.CheckConstraint(
            "checksum_source IN ('training', 'promotion')",
            name="ck_model_promotions_checksum_source",
        ),
    )
    # At most one live promotion per task and alias.
    op.create_index(
        "uq_model_promotions_live",
        "model_promotions",
        ["task", "alias"],
        unique=True,
        postgresql_where=sa.text("demoted_at IS NULL"),
    )
    op.create_index("ix_model_promotions_run_id", "model_promotions", ["run_id"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("revoked_by", sa.String(100)),
        sa.Column("revoked_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_index(
        "uq_api_keys_live_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_api_keys_live_name", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_model_promotions_run_id", table_name="model_promotions")
    op.drop_index("uq_model_promotions_live", table_name="model_promotions")
    op.drop_table("model_promotions")
