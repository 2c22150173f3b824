"""The notifier's tables: its copy of each sent invoice, and one delivery per reminder step.

A delivery is written when ``reminder.due`` arrives and moves ``pending`` → ``sending``
(committed before the SMTP transaction begins) → ``sent`` or ``failed``, or back to
``pending`` with a later ``next_attempt_at`` after a temporary failure. While ``sending``,
``next_attempt_at`` is the end of the sender's lease: a delivery still ``sending`` after
it was interrupted mid-send; it is then failed (in doubt), never sent again (see
email/workers.py).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("organization_name", Text, nullable=False),
    Column("organization_country", Text, nullable=False),
    Column("organization_locale", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("sender_email", Text),
    Column("customer_name", Text, nullable=False),
    Column("customer_email", Text),
    Column("customer_locale", Text),
    Column("number", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", Numeric(18, 4), nullable=False),
    Column("balance", Numeric(18, 4), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("payment_reference", Text),
    Column("external_id", Text),  # the partner's id of the invoice, told in its webhooks
    # the time of the event that last changed it: an older event never overwrites a newer
    Column("as_of", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("step_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("message_id", Text, nullable=False),
    Column("recipient", Text),
    Column("last_error", Text),
    Column("done_at", DateTime(timezone=True)),
    # when a send first found no copy of the invoice (reminder.due applied before
    # invoice.sent); cleared by the invoice's arrival, which makes the delivery due at once
    Column("invoice_awaited_since", DateTime(timezone=True)),
    # the span that handled the step's reminder.due (W3C), which the email's span continues
    Column("traceparent", Text),
    Index(
        "deliveries_to_send",
        "next_attempt_at",
        postgresql_where=text("state IN ('pending', 'sending')"),
    ),
    Index(
        "deliveries_awaiting_invoice",
        "invoice_id",
        postgresql_where=text("state = 'pending' AND invoice_awaited_since IS NOT NULL"),
    ),
)

# Partner endpoints (Standard Webhooks): a deleted one keeps its deliveries' history.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Index("webhook_endpoints_of_organization", "organization_id"),
)

# One message to one endpoint; its id is the ``webhook-id`` the partner dedupes on.
# ``pending`` until a 2xx (``delivered``) or until the retries of a day ran out (``failed``,
# kept for replay). While a delivery is in flight ``next_attempt_at`` is its lease.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("endpoint_id", Uuid, nullable=False),
    Column("organization_id", Uuid, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index(
        "webhook_deliveries_to_send",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
    ),
    Index("webhook_deliveries_of_endpoint", "endpoint_id", "created_at"),
)

# An organization's own wording of a step kind in a language (Jinja2, run sandboxed).
template_overrides = Table(
    "template_overrides",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("language", Text, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
