"""The lookup keys of every unmatched credit, computed as the service computes them: the
credits left unmatched before 0003 had none (so an invoice known later never found them),
and the keys now also name the payer's account and name.

Revision ID: 0004
Revises: 0003
"""

import uuid

import sqlalchemy as sa
from alembic import op

from relance.payment_matcher.service import waiting_keys

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000

_NEXT = sa.text(
    """
    SELECT organization_id, bank_reference, amount, currency, counterparty_name,
           counterparty_iban, remittance_info, creditor_reference
    FROM bank_transactions
    WHERE state = 'unmatched' AND amount > 0
      AND (organization_id, bank_reference) > (:org, :ref)
    ORDER BY organization_id, bank_reference
    LIMIT :limit
    """
)
_SET = sa.text(
    "UPDATE bank_transactions SET lookup_keys = :keys"
    " WHERE organization_id = :org AND bank_reference = :ref"
)


def upgrade() -> None:
    connection = op.get_bind()
    after = {"org": uuid.UUID(int=0), "ref": ""}
    while rows := connection.execute(_NEXT, {**after, "limit": BATCH}).all():
        connection.execute(
            _SET,
            [
                {"org": row.organization_id, "ref": row.bank_reference, "keys": waiting_keys(row)}
                for row in rows
            ],
        )
        after = {"org": rows[-1].organization_id, "ref": rows[-1].bank_reference}


def downgrade() -> None:
    pass  # the keys computed are right for 0003 too
