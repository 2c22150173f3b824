"""The partner's own id of each invoice in the notifier's copy, so that every webhook about
an invoice names it as the partner knows it. Copies already there get it from their next
``invoice.updated``; until then their messages carry ``external_id: null``.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("external_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("invoices", "external_id")
