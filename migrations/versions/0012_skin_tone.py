"""Estimated skin tone per image: ITA° from the pixels, its category and the method.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SKIN_TONES = ("very_light", "light", "intermediate", "tan", "brown", "dark")


def upgrade() -> None:
    op.add_column("ml_training_images", sa.Column("skin_tone_ita", sa.Float()))
    op.add_column("ml_training_images", sa.Column("skin_tone", sa.String(16)))
    op.add_column("ml_training_images", sa.Column("skin_tone_method", sa.String(32)))
    op.create_check_constraint(
        "ck_ml_training_images_skin_tone", "ml_training_images", f"skin_tone IN {SKIN_TONES!r}"
    )
    op.create_index("ix_ml_training_images_skin_tone", "ml_training_images", ["skin_tone"])


def downgrade() -> None:
    op.drop_index("ix_ml_training_images_skin_tone", table_name="ml_training_images")
    op.drop_constraint("ck_ml_training_images_skin_tone", "ml_training_images", type_="check")
    op.drop_column("ml_training_images", "skin_tone_method")
    op.drop_column("ml_training_images", "skin_tone")
    op.drop_column("ml_training_images", "skin_tone_ita")
