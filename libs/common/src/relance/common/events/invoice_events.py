"""Topic ``invoice-events``: what invoice-api says happened to an invoice."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from relance.common.events.envelope import InvoicePayload
from relance.common.events.types import (
    CustomerSnapshot,
    InvoiceSnapshot,
    Money,
    OrganizationSnapshot,
)

TOPIC = "invoice-events"


class InvoiceSent(InvoicePayload, event_type="invoice.sent", topic=TOPIC):
    """The invoice went out (or was imported as sent on ``invoice.sent_at``): plan its reminders."""

    organization: OrganizationSnapshot
    customer: CustomerSnapshot
    invoice: InvoiceSnapshot
    imported: bool = False


class InvoiceUpdated(InvoicePayload, event_type="invoice.updated", topic=TOPIC):
    """The invoice or its customer changed (due date, amounts, email...)."""

    organization: OrganizationSnapshot
    customer: CustomerSnapshot
    invoice: InvoiceSnapshot
    previous_due_date: date | None = None


class PaymentReported(InvoicePayload, event_type="payment.reported", topic=TOPIC):
    payment_id: UUID
    amount: Money
    currency: str
    paid_on: date
    reference: str | None = None
    source: str = "user"
    total: Money
    paid: Money
    balance: Money
    # the invoice's status after this payment, by invoice-api's rules (None from older
    # emitters: then paid at a zero balance, else partially_paid)
    status: str | None = None
    # the payment-matcher's match this payment records (its payment.matched), if any: the
    # matcher knows by it that this balance includes that payment
    match_id: UUID | None = None


class PaymentScheduled(InvoicePayload, event_type="payment.scheduled", topic=TOPIC):
    planned_on: date
    amount: Money | None = None


class RemindersSuspended(InvoicePayload, event_type="reminders.suspended", topic=TOPIC):
    reason: str | None = None
    suspended_at: datetime


class InvoiceHandedToCollection(
    InvoicePayload, event_type="invoice.handed_to_collection", topic=TOPIC
):
    handed_at: datetime


class InvoiceStatusChanged(InvoicePayload, event_type="invoice.status_changed", topic=TOPIC):
    """The invoice's status changed with no event of its own telling it: mostly the calendar
    (its due date passed: ``not_due`` → ``to_collect``; the grace of a scheduled payment
    ended with the balance still open), sent once, at the organization's midnight of the
    day the change starts; or a due date moved (``changed_at`` is then the move's time).
    A payment, a payment schedule or a collection tells the status it makes itself."""

    status: str
    previous_status: str
    changed_at: datetime
