"""Reminder steps held by a payment: whether a step is held, why, and when it goes.

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
        "reminder_steps",
        sa.Column("held", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.add_column("reminder_steps", sa.Column("hold_reason", sa.Text(), nullable=True))
    op.add_column("reminder_steps", sa.Column("goes_at", sa.DateTime(timezone=True), nullable=True))
    # plans read before this revision: a planned step goes at its own time
    op.execute("UPDATE reminder_steps SET goes_at = scheduled_for WHERE status = 'planned'")


def downgrade() -> None:
    op.drop_column("reminder_steps", "goes_at")
    op.drop_column("reminder_steps", "hold_reason")
    op.drop_column("reminder_steps", "held")
