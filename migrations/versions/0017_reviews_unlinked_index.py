"""Reviews waiting for their product get a partial index of their own.

`ix_reviews_product_external_id` indexed every review's product id as written in the file, but
its only reader is the query that links reviews to products that arrive later (`link_reviews`),
which asks only for reviews with no product yet. Once products are loaded that is almost none of
them, so the full index was kept up (and rebuilt at the end of every large review load) for
nothing. `ix_reviews_unlinked` holds only the unlinked reviews; a review leaves it when linked.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_reviews_product_external_id", table_name="reviews")
    op.create_index(
        "ix_reviews_unlinked",
        "reviews",
        ["source", "product_external_id"],
        postgresql_where=sa.text("product_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_unlinked", table_name="reviews")
    op.create_index("ix_reviews_product_external_id", "reviews", ["product_external_id"])
