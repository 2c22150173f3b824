"""The invoice-api's tables. Every row carries its organization; every query filters by it."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

MONEY = Numeric(18, 4)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("reminder_time", Time, nullable=False),
    Column("sender_email", Text),
    Column("api_key_sha256", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # verifies partners' signed requests (HMAC), so it is kept as given, not hashed
    Column("partner_secret", Text),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("locale", Text),
    Column("ibans", ARRAY(Text), nullable=False, server_default="{}"),
    Column("external_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("customers_by_organization", "organization_id", "created_at", "id"),
    Index(
        "customers_external_id",
        "organization_id",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    ),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), nullable=False),
    Column("customer_id", Uuid, ForeignKey("customers.id"), nullable=False),
    Column("number", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", MONEY, nullable=False),
    Column("paid", MONEY, nullable=False, server_default="0"),
    Column("invoice_text", Text),
    Column("payment_reference", Text),
    Column("external_id", Text),
    Column("sent_at", DateTime(timezone=True)),
    Column("imported", Boolean, nullable=False, server_default="false"),
    Column("reminders_suspended_at", DateTime(timezone=True)),
    Column("suspension_reason", Text),
    Column("in_collection_at", DateTime(timezone=True)),
    Column("scheduled_payment_on", Date),
    Column("scheduled_payment_amount", MONEY),
    Column("scheduled_until", Date),  # P + 2 business days: fixed once P is known
    Column("payment_detected", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Not the status (always derived, status.py), but what others were last told it is,
    # and the instant the calendar alone next changes it (the calendar loop's work list)
    Column("status_announced", Text),
    Column("next_status_change_at", DateTime(timezone=True)),
    UniqueConstraint("organization_id", "number", name="invoices_number_per_organization"),
    Index("invoices_by_organization", "organization_id", "created_at", "id"),
    Index("invoices_by_customer", "organization_id", "customer_id"),
    Index(
        "invoices_open_by_due_date",
        "organization_id",
        "due_date",
        postgresql_where=text("sent_at IS NOT NULL AND paid < total"),
    ),
    Index(
        "invoices_external_id",
        "organization_id",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    ),
    Index(
        "invoices_by_next_status_change",
        "next_status_change_at",
        postgresql_where=text("next_status_change_at IS NOT NULL"),
    ),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, ForeignKey("invoices.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("reference", Text),
    Column("source", Text, nullable=False),  # user, partner, bank
    Column("match_id", Uuid, unique=True),  # the payment-matcher's match, applied once
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("payments_by_invoice", "invoice_id"),
)

# The read model of the scheduler's plan: replaced whole by each reminder.planned.
reminder_steps = Table(
    "reminder_steps",
    metadata,
    Column("step_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, ForeignKey("invoices.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", Integer, nullable=False),
    Column("scheduled_for", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("reason", Text),
    # a planned step held back by a payment: why, and when it goes if nothing changes
    Column("held", Boolean, nullable=False, server_default="false"),
    Column("hold_reason", Text),
    Column("goes_at", DateTime(timezone=True)),
    Index("reminder_steps_by_invoice", "invoice_id", "position"),
)

# What the notifier reported for a step, kept apart from the plan: the two arrive on
# different topics, in either order, and the outcome must survive a plan re-publication.
step_outcomes = Table(
    "step_outcomes",
    metadata,
    Column("step_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("status", Text, nullable=False),  # sent or failed
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text),
)

activity = Table(
    "activity",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, ForeignKey("invoices.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default="{}"),
    Index("activity_by_invoice", "invoice_id", "id"),
)

# Partner requests applied (POST /v1/partner-events), by their webhook-id: each applies once.
partner_events = Table(
    "partner_events",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("webhook_id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    Column("payment_id", Uuid, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
