"""Plans, steps, pending payment suggestions, and the tenants known from invoice-api.

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
        "plans",
        sa.Column("invoice_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("reminder_time", sa.Time(), nullable=False),
        sa.Column("stopped", sa.Text()),
        sa.Column("hold_until", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.create_table(
        "steps",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), sa.ForeignKey("plans.invoice_id"), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True)),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text()),
    )
    op.create_index(
        "steps_to_fire", "steps", ["fire_at"], postgresql_where=sa.text("fire_at IS NOT NULL")
    )
    op.create_index("steps_of_invoice", "steps", ["invoice_id", "position"])
    op.create_table(
        "suggestions",
        sa.Column("match_id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
    )
    op.create_index("suggestions_of_invoice", "suggestions", ["invoice_id"])


def downgrade() -> None:
    op.drop_table("suggestions")
    op.drop_table("steps")
    op.drop_table("plans")
    drop_tenants_table(op.get_bind())
