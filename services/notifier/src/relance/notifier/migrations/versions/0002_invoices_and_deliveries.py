"""The notifier's copy of invoices, its deliveries, and the tenants known from invoice-api.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from relance.common.tenants import create_tenants_table, drop_tenants_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tenants_table(op.get_bind())
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("organization_name", sa.Text(), nullable=False),
        sa.Column("organization_country", sa.Text(), nullable=False),
        sa.Column("organization_locale", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("sender_email", sa.Text()),
        sa.Column("customer_name", sa.Text(), nullable=False),
        sa.Column("customer_email", sa.Text()),
        sa.Column("customer_locale", sa.Text()),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("total", sa.Numeric(18, 4), nullable=False),
        sa.Column("balance", sa.Numeric(18, 4), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("payment_reference", sa.Text()),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("step_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "deliveries_to_send",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("invoices")
    drop_tenants_table(op.get_bind())
