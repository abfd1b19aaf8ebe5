"""Reviews keep their provenance (file and row) instead of a second copy of the whole row.

`reviews.raw` held every cell of the review's CSV row as JSONB beside the typed columns that
already hold the ones skinctl uses (the rest, product name, brand and price, are the product
file's). Building and storing it was most of the bulk ingest's time; what is needed from it is
where a review came from: `source_file` (the file's name) and `source_row` (the review's row in
that file, 1 = the first row after the header; a reported problem names the physical line).
The downgrade brings `raw` back, rebuilt from the typed columns.

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("source_file", sa.Text()))
    op.add_column("reviews", sa.Column("source_row", sa.Integer()))
    op.drop_column("reviews", "raw")


def downgrade() -> None:
    op.add_column(
        "reviews",
        sa.Column(
            "raw",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.execute(
        "UPDATE reviews SET raw = jsonb_strip_nulls(jsonb_build_object("
        "'product_id', product_external_id, 'author_id', author_id, 'rating', rating::text, "
        "'is_recommended', is_recommended::int::text, 'helpfulness', helpfulness::text, "
        "'total_feedback_count', total_feedback_count::text, 'skin_type', skin_type, "
        "'skin_tone', skin_tone, 'eye_color', eye_color, 'hair_color', hair_color, "
        "'review_title', title, 'review_text', review_text, "
        "'submission_time', submitted_on::text))"
    )
    op.alter_column("reviews", "raw", server_default=None)
    op.drop_column("reviews", "source_row")
    op.drop_column("reviews", "source_file")
