"""The payments this service recorded that invoice-api has not acknowledged yet: the
balances invoice-api reports are taken less them, so that no transfer pays an invoice that
another one already paid.

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
    op.create_table(
        "payments_in_flight",
        sa.Column("match_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("bank_reference", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(18, 4), nullable=False),
    )
    op.create_index(
        "payments_in_flight_of_invoice", "payments_in_flight", ["organization_id", "invoice_id"]
    )


def downgrade() -> None:
    op.drop_table("payments_in_flight")
