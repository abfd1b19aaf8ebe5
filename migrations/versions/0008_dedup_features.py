"""Per-image local features for near-duplicate detection (ORB keypoints, descriptors, tokens).

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_dedup_features",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("keypoints", sa.LargeBinary(), nullable=False),
        sa.Column("descriptors", sa.LargeBinary(), nullable=False),
        sa.Column("mirror_keypoints", sa.LargeBinary(), nullable=False),
        sa.Column("mirror_descriptors", sa.LargeBinary(), nullable=False),
        sa.Column("tokens", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.Column("linked_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("image_id", name="pk_image_dedup_features"),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["ml_training_images.id"],
            name="fk_image_dedup_features_image_id_ml_training_images",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("image_dedup_features")
