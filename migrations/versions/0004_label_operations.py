"""Label history grouped into operations, so one person's change (e.g. a correction that
supersedes the dataset label and adds a human one) can be undone as a whole.

Revision ID: 0004
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN is DDL, not a row UPDATE: the append-only trigger does not fire.
    op.add_column("label_history", sa.Column("operation_id", sa.String(36)))
    op.add_column("label_history", sa.Column("undoes_operation_id", sa.String(36)))
    op.create_index("ix_label_history_operation_id", "label_history", ["operation_id"])
    op.create_index(
        "ix_label_history_undoes_operation_id", "label_history", ["undoes_operation_id"]
    )
    op.create_index(
        "ix_label_history_changed_by_changed_at", "label_history", ["changed_by", "changed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_label_history_changed_by_changed_at", table_name="label_history")
    op.drop_index("ix_label_history_undoes_operation_id", table_name="label_history")
    op.drop_index("ix_label_history_operation_id", table_name="label_history")
    op.drop_column("label_history", "undoes_operation_id")
    op.drop_column("label_history", "operation_id")
