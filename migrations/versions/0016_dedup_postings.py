"""The near-duplicate token index in the database (`skinctl.dedup.postings`).

Linking built an in-memory inverted index over the tokens of every stored image on each pass
(about 6 GB at a million images). The postings now live in `image_dedup_postings` (one row per
segment and token bucket, encoded bytes), segments in `image_dedup_segments`, and
`image_dedup_features.indexed_at` says which images are in it. Nothing else changes: the store
is rebuilt from the features by the next linking pass, so the downgrade simply drops it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("image_dedup_features", sa.Column("indexed_at", sa.DateTime()))
    op.create_table(
        "image_dedup_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("postings", sa.BigInteger(), nullable=False),
        sa.Column("merged_into", sa.Integer()),
        sa.Column(
            "created_at", sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_image_dedup_segments"),
    )
    op.create_table(
        "image_dedup_postings",
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("postings", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("method", "bucket", "segment_id", name="pk_image_dedup_postings"),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["image_dedup_segments.id"],
            name="fk_image_dedup_postings_segment_id_image_dedup_segments",
            ondelete="CASCADE",
        ),
    )
    # The data is zlib-compressed already: out of line, without PostgreSQL's compression.
    op.execute("ALTER TABLE image_dedup_postings ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("image_dedup_postings")
    op.drop_table("image_dedup_segments")
    op.drop_column("image_dedup_features", "indexed_at")
