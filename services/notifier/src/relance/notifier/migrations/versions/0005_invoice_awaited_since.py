"""When a delivery began waiting for its invoice's copy.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("invoice_awaited_since", sa.DateTime(timezone=True), nullable=True)
    )
    # what an invoice's arrival looks up (handlers.on_invoice_changed)
    op.create_index(
        "deliveries_awaiting_invoice",
        "deliveries",
        ["invoice_id"],
        postgresql_where=sa.text("state = 'pending' AND invoice_awaited_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("deliveries_awaiting_invoice", table_name="deliveries")
    op.drop_column("deliveries", "invoice_awaited_since")
