"""The scheduler's tables: one plan per sent invoice, its steps, and pending payment matches.

Every row carries its organization. ``steps.fire_at`` is when the firing loop takes a
step: set for a step that is planned and free to go, NULL for one that must not go (held,
fired, cancelled, done). The partial index on it holds only the steps waiting to fire, so
claiming stays as fast with a million steps planned months ahead.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    Table,
    Text,
    Time,
    Uuid,
    func,
    text,
)

metadata = MetaData()

plans = Table(
    "plans",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("imported", Boolean, nullable=False),
    # the organization's rules when the invoice was sent
    Column("country", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("reminder_time", Time, nullable=False),
    # why reminders stopped for good (paid, suspended, in_collection); NULL while they run
    Column("stopped", Text),
    # a scheduled payment holds the steps until this instant
    Column("hold_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, ForeignKey("plans.invoice_id"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("scheduled_for", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("fire_at", DateTime(timezone=True)),
    Column("fired_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("reason", Text),
    # W3C trace context of the event that planned the step (tracing on), for its reminder.due
    Column("traceparent", Text),
    Index("steps_to_fire", "fire_at", postgresql_where=text("fire_at IS NOT NULL")),
    Index("steps_of_invoice", "invoice_id", "position"),
)

# Probable payments the matcher found: while one is pending, its invoice's steps are held.
suggestions = Table(
    "suggestions",
    metadata,
    Column("match_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("invoice_id", Uuid, nullable=False),
    Column("pending", Boolean, nullable=False),
    Index("suggestions_of_invoice", "invoice_id"),
)
