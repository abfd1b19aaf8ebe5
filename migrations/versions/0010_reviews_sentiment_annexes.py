"""The whole CosIng catalog and review sentiment: annex entries of Annexes IV, V and VI beside
II and III , the product's own claims
(`highlights`), and one stored sentiment per review and scoring run.

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ANNEXES_BEFORE = "annex IN ('II', 'III')"
ANNEXES_AFTER = "annex IN ('II', 'III', 'IV', 'V', 'VI')"


def upgrade() -> None:
    op.drop_constraint("ck_annex_entries_annex", "annex_entries", type_="check")
    op.create_check_constraint("ck_annex_entries_annex", "annex_entries", ANNEXES_AFTER)
    # Annex IV: the colour of a colorant.
    op.add_column("annex_entries", sa.Column("colour", sa.Text()))
    op.add_column(
        "products",
        sa.Column(
            "highlights",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
    )
    op.create_table(
        "review_sentiments",
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("sentiment", sa.String(10), nullable=False),
        sa.Column("p_negative", sa.Float(), nullable=False),
        sa.Column("p_neutral", sa.Float(), nullable=False),
        sa.Column("p_positive", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("review_id", "run_id", name="pk_review_sentiments"),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
            name="fk_review_sentiments_review_id_reviews",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["model_training_metrics.id"],
            name="fk_review_sentiments_run_id_model_training_metrics",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "sentiment IN ('negative', 'neutral', 'positive')",
            name="ck_review_sentiments_sentiment",
        ),
    )
    op.create_index("ix_review_sentiments_run_id", "review_sentiments", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_review_sentiments_run_id", table_name="review_sentiments")
    op.drop_table("review_sentiments")
    op.drop_column("products", "highlights")
    op.drop_column("annex_entries", "colour")
    op.execute("DELETE FROM annex_entries WHERE annex NOT IN ('II', 'III')")
    op.drop_constraint("ck_annex_entries_annex", "annex_entries", type_="check")
    op.create_check_constraint("ck_annex_entries_annex", "annex_entries", ANNEXES_BEFORE)
