"""What an unmatched credit names (references, invoice number groups), so that an invoice
known after its payment finds the credit that waited for it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bank_transactions", sa.Column("lookup_keys", postgresql.ARRAY(sa.Text()), nullable=True)
    )
    op.create_index(
        "bank_transactions_waiting",
        "bank_transactions",
        ["lookup_keys"],
        postgresql_using="gin",
        postgresql_where=sa.text("state = 'unmatched' AND lookup_keys IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("bank_transactions_waiting", table_name="bank_transactions")
    op.drop_column("bank_transactions", "lookup_keys")
