"""Organizations, customers, invoices, payments and the read model of reminders.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("locale", sa.Text(), nullable=False),
        sa.Column("reminder_time", sa.Time(), nullable=False),
        sa.Column("sender_email", sa.Text(), nullable=True),
        sa.Column("api_key_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_sha256"),
    )
    op.create_table(
        "step_outcomes",
        sa.Column("step_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("step_id"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("locale", sa.Text(), nullable=True),
        sa.Column("ibans", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "customers_by_organization",
        "customers",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "customers_external_id",
        "customers",
        ["organization_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("paid", sa.Numeric(precision=18, scale=4), server_default="0", nullable=False),
        sa.Column("invoice_text", sa.Text(), nullable=True),
        sa.Column("payment_reference", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imported", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("reminders_suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspension_reason", sa.Text(), nullable=True),
        sa.Column("in_collection_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_payment_on", sa.Date(), nullable=True),
        sa.Column("scheduled_payment_amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("scheduled_until", sa.Date(), nullable=True),
        sa.Column("payment_detected", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "number", name="invoices_number_per_organization"),
    )
    op.create_index(
        "invoices_by_customer", "invoices", ["organization_id", "customer_id"], unique=False
    )
    op.create_index(
        "invoices_by_organization",
        "invoices",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "invoices_external_id",
        "invoices",
        ["organization_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_index(
        "invoices_open_by_due_date",
        "invoices",
        ["organization_id", "due_date"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NOT NULL AND paid < total"),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("activity_by_invoice", "activity", ["invoice_id", "id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("match_id"),
    )
    op.create_index("payments_by_invoice", "payments", ["invoice_id"], unique=False)
    op.create_table(
        "reminder_steps",
        sa.Column("step_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("step_id"),
    )
    op.create_index(
        "reminder_steps_by_invoice", "reminder_steps", ["invoice_id", "position"], unique=False
    )


def downgrade() -> None:
    op.drop_index("reminder_steps_by_invoice", table_name="reminder_steps")
    op.drop_table("reminder_steps")
    op.drop_index("payments_by_invoice", table_name="payments")
    op.drop_table("payments")
    op.drop_index("activity_by_invoice", table_name="activity")
    op.drop_table("activity")
    op.drop_index(
        "invoices_open_by_due_date",
        table_name="invoices",
        postgresql_where=sa.text("sent_at IS NOT NULL AND paid < total"),
    )
    op.drop_index(
        "invoices_external_id",
        table_name="invoices",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("invoices_by_organization", table_name="invoices")
    op.drop_index("invoices_by_customer", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index(
        "customers_external_id",
        table_name="customers",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("customers_by_organization", table_name="customers")
    op.drop_table("customers")
    op.drop_table("step_outcomes")
    op.drop_table("organizations")
