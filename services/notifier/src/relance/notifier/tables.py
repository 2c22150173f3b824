"""The notifier's tables: its copy of each sent invoice, and one delivery per reminder step.

A delivery is written when ``reminder.due`` arrives and moves ``pending`` → ``sending``
(committed before the SMTP transaction begins) → ``sent`` or ``failed``, or back to
``pending`` with a later ``next_attempt_at`` after a temporary failure. While ``sending``,
``next_attempt_at`` is the end of the sender's lease: a delivery still ``sending`` after
it was interrupted mid-send, and is never sent again (see sending.py).
"""

from __future__ import annotations

from sqlalchemy import (
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
    Index(
        "deliveries_to_send",
        "next_attempt_at",
        postgresql_where=text("state IN ('pending', 'sending')"),
    ),
)
