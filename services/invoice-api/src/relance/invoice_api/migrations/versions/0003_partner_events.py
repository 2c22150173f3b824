"""Partners' inbound events: the organization's partner secret, and the webhook-ids applied.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("partner_secret", sa.Text(), nullable=True))
    op.create_table(
        "partner_events",
        sa.Column("organization_id", sa.Uuid(), primary_key=True),
        sa.Column("webhook_id", sa.Text(), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partner_events")
    op.drop_column("organizations", "partner_secret")
