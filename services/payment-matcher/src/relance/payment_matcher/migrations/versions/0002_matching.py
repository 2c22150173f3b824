"""Open invoices and payers (kept from invoice events), bank transactions, matches, rejected
pairs, and the tenants known from invoice-api.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from relance.common.tenants import create_tenants_table, drop_tenants_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)
TEXTS = postgresql.ARRAY(sa.Text())


def upgrade() -> None:
    create_tenants_table(op.get_bind())
    op.create_table(
        "open_invoices",
        sa.Column("invoice_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("payment_reference", sa.Text()),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("balance", MONEY, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
    )
    op.create_index(
        "open_invoices_to_match",
        "open_invoices",
        ["organization_id"],
        postgresql_where=sa.text("balance > 0"),
    )
    op.create_table(
        "payers",
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ibans", TEXTS, nullable=False, server_default="{}"),
        sa.Column("learned_names", TEXTS, nullable=False, server_default="{}"),
        sa.Column("learned_ibans", TEXTS, nullable=False, server_default="{}"),
    )
    op.create_index("payers_by_organization", "payers", ["organization_id"])
    op.create_table(
        "bank_transactions",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bank_reference", sa.Text(), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("counterparty_name", sa.Text()),
        sa.Column("counterparty_iban", sa.Text()),
        sa.Column("remittance_info", sa.Text()),
        sa.Column("creditor_reference", sa.Text()),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "bank_reference"),
    )
    op.create_index(
        "bank_transactions_by_state",
        "bank_transactions",
        ["organization_id", "state", "imported_at"],
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bank_reference", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("matches_by_state", "matches", ["organization_id", "state", "created_at", "id"])
    op.create_index("matches_of_transaction", "matches", ["organization_id", "bank_reference"])
    op.create_table(
        "match_allocations",
        sa.Column("match_id", sa.Uuid(), sa.ForeignKey("matches.id"), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("match_id", "invoice_id"),
    )
    op.create_table(
        "rejected_pairs",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bank_reference", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "bank_reference", "invoice_id"),
    )


def downgrade() -> None:
    for table in ("rejected_pairs", "match_allocations", "matches", "bank_transactions"):
        op.drop_table(table)
    op.drop_table("payers")
    op.drop_table("open_invoices")
    drop_tenants_table(op.get_bind())
