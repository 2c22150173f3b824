"""What the calendar loop needs to announce the status changes the calendar alone makes:
the status last announced of each invoice and when the calendar next changes it.

Open invoices already there are due for a look at once: the loop adopts their current
status without announcing it, and finds their next change.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("status_announced", sa.Text(), nullable=True))
    op.add_column(
        "invoices",
        sa.Column("next_status_change_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE invoices SET next_status_change_at = now() "
        "WHERE sent_at IS NOT NULL AND paid < total AND in_collection_at IS NULL"
    )
    op.create_index(
        "invoices_by_next_status_change",
        "invoices",
        ["next_status_change_at"],
        postgresql_where=sa.text("next_status_change_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("invoices_by_next_status_change", table_name="invoices")
    op.drop_column("invoices", "next_status_change_at")
    op.drop_column("invoices", "status_announced")
