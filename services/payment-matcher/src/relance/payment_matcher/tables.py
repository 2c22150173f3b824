"""The payment-matcher's tables. Every row carries its organization; every query filters by it.

``open_invoices`` and ``payers`` are its own copy of invoice-api's invoices and customers,
kept from invoice events (and, for payers, from what people confirmed). The rest is its own:
the bank transactions imported, the matches found or suggested, the payments recorded that
invoice-api has not acknowledged yet, the pairs people rejected.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)

metadata = MetaData()

MONEY = Numeric(18, 4)

open_invoices = Table(
    "open_invoices",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("customer_id", Uuid, nullable=False),
    Column("number", Text, nullable=False),
    Column("payment_reference", Text),
    Column("currency", Text, nullable=False),
    Column("balance", MONEY, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("sent_on", Date, nullable=False),
    Index("open_invoices_to_match", "organization_id", postgresql_where=text("balance > 0")),
)

payers = Table(
    "payers",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("ibans", ARRAY(Text), nullable=False, server_default="{}"),
    # taught by people confirming suggestions: the names and accounts this customer pays from
    Column("learned_names", ARRAY(Text), nullable=False, server_default="{}"),
    Column("learned_ibans", ARRAY(Text), nullable=False, server_default="{}"),
    Index("payers_by_organization", "organization_id"),
)

bank_transactions = Table(
    "bank_transactions",
    metadata,
    Column("organization_id", Uuid, nullable=False),
    Column("bank_reference", Text, nullable=False),
    Column("booked_on", Date, nullable=False),
    Column("amount", MONEY, nullable=False),  # > 0 a credit, < 0 a debit (never matched)
    Column("currency", Text, nullable=False),
    Column("counterparty_name", Text),
    Column("counterparty_iban", Text),
    Column("remittance_info", Text),
    Column("creditor_reference", Text),
    # matched, suggested or unmatched: what its matches say, kept here to list by it; the
    # confidence, the payer and the excess are read from the matches themselves
    Column("state", Text, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    # an unmatched credit's references and number groups (matching.credit_lookup_keys): an
    # invoice known later looks for the credits that may name it by these
    Column("lookup_keys", ARRAY(Text)),
    PrimaryKeyConstraint("organization_id", "bank_reference"),
    Index("bank_transactions_by_state", "organization_id", "state", "imported_at"),
    Index(
        "bank_transactions_waiting",
        "lookup_keys",
        postgresql_using="gin",
        postgresql_where=text("state = 'unmatched' AND lookup_keys IS NOT NULL"),
    ),
)

matches = Table(
    "matches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("bank_reference", Text, nullable=False),
    # matched (automatic), suggested (waits for a person), confirmed, rejected, or dismissed
    # (another suggestion of the same transaction was confirmed)
    Column("state", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("customer_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Index("matches_by_state", "organization_id", "state", "created_at", "id"),
    Index("matches_of_transaction", "organization_id", "bank_reference"),
)

match_allocations = Table(
    "match_allocations",
    metadata,
    Column("match_id", Uuid, ForeignKey("matches.id"), nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    Column("amount", MONEY, nullable=False),
    PrimaryKeyConstraint("match_id", "invoice_id"),
)

# the payments this service recorded (matched, or confirmed by a person) that invoice-api
# has not acknowledged yet (a payment.reported naming the match): the balances its events
# carry do not include them, so they are taken off (matching.balance_here)
payments_in_flight = Table(
    "payments_in_flight",
    metadata,
    Column("match_id", Uuid, primary_key=True),  # one invoice's part of a match, as in events
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    Column("bank_reference", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Index("payments_in_flight_of_invoice", "organization_id", "invoice_id"),
)

rejected_pairs = Table(
    "rejected_pairs",
    metadata,
    Column("organization_id", Uuid, nullable=False),
    Column("bank_reference", Text, nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    PrimaryKeyConstraint("organization_id", "bank_reference", "invoice_id"),
)
