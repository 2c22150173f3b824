"""What the notifier does with each event it reads, one use case each: keeps its copy of
invoices, turns each ``reminder.due`` into one email delivery, and tells partners."""

from __future__ import annotations

from relance.common import tenants
from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceSent,
    InvoiceStatusChanged,
    InvoiceUpdated,
    PaymentReported,
    PaymentScheduled,
    RemindersSuspended,
)
from relance.common.events.payment_events import PaymentMatched, PaymentSuggested
from relance.common.events.reminder_events import ReminderDue
from relance.common.kafka import Handler
from relance.notifier.email.service import add_email_delivery
from relance.notifier.service import keep_invoice, keep_payment
from relance.notifier.webhooks.service import fan_out

HANDLERS: dict[str, Handler] = {
    **tenants.HANDLERS,
    InvoiceSent.event_type: keep_invoice,
    InvoiceUpdated.event_type: keep_invoice,
    PaymentReported.event_type: keep_payment,
    ReminderDue.event_type: add_email_delivery,
    # the events that only cause partner messages
    PaymentScheduled.event_type: fan_out,
    RemindersSuspended.event_type: fan_out,
    InvoiceHandedToCollection.event_type: fan_out,
    InvoiceStatusChanged.event_type: fan_out,
    PaymentSuggested.event_type: fan_out,
    PaymentMatched.event_type: fan_out,
}
