"""What the notifier does with each event it reads: keeps its copy of invoices, and turns
each ``reminder.due`` into one delivery (a repeated one changes nothing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common import tenants
from relance.common.events import Event
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
from relance.common.logging import get_logger
from relance.common.tracing import current_traceparent
from relance.notifier import repository as repo
from relance.notifier.mail import message_id_for
from relance.notifier.webhooks import fan_out

log = get_logger(__name__)


async def on_invoice_changed(
    session: AsyncSession, event: Event[InvoiceSent] | Event[InvoiceUpdated]
) -> None:
    data = event.data
    org, customer, invoice = data.organization, data.customer, data.invoice
    await repo.save_invoice(
        session,
        {
            "invoice_id": data.invoice_id,
            "organization_id": event.organization_id,
            "organization_name": org.name,
            "organization_country": org.country,
            "organization_locale": org.locale,
            "timezone": org.timezone,
            "sender_email": org.sender_email,
            "customer_name": customer.name,
            "customer_email": customer.email,
            "customer_locale": customer.locale,
            "number": invoice.number,
            "currency": invoice.currency,
            "total": invoice.total,
            "balance": invoice.balance,
            "due_date": invoice.due_date,
            "payment_reference": invoice.payment_reference,
            "external_id": invoice.external_id,
            "as_of": event.time,
        },
    )
    # a reminder.due applied before this invoice.sent (another topic) waits for it: now
    if await repo.invoice_arrived(session, event.organization_id, data.invoice_id, event.time):
        log.info("invoice arrived, its waiting emails are due", invoice=str(data.invoice_id))
    await fan_out(session, event)


async def on_payment_reported(session: AsyncSession, event: Event[PaymentReported]) -> None:
    # the next email quotes the balance after this payment
    await repo.set_amounts(
        session,
        event.organization_id,
        event.data.invoice_id,
        total=event.data.total,
        balance=event.data.balance,
        as_of=event.time,
    )
    await fan_out(session, event)


async def on_reminder_due(session: AsyncSession, event: Event[ReminderDue]) -> None:
    data = event.data
    created = await repo.add_delivery(
        session,
        {
            "step_id": data.step_id,
            "organization_id": event.organization_id,
            "invoice_id": data.invoice_id,
            "kind": data.kind.value,
            "severity": data.severity,
            "state": "pending",
            "next_attempt_at": event.time,
            "message_id": message_id_for(data.step_id),
            "traceparent": current_traceparent(),
        },
    )
    if not created:
        log.info(
            "step already has a delivery, repeated reminder.due ignored", step=str(data.step_id)
        )


async def tell_partners(session: AsyncSession, event: Event[Any]) -> None:
    await fan_out(session, event)


HANDLERS: dict[str, Handler] = {
    **tenants.HANDLERS,
    InvoiceSent.event_type: on_invoice_changed,
    InvoiceUpdated.event_type: on_invoice_changed,
    PaymentReported.event_type: on_payment_reported,
    ReminderDue.event_type: on_reminder_due,
    PaymentScheduled.event_type: tell_partners,
    RemindersSuspended.event_type: tell_partners,
    InvoiceHandedToCollection.event_type: tell_partners,
    InvoiceStatusChanged.event_type: tell_partners,
    PaymentSuggested.event_type: tell_partners,
    PaymentMatched.event_type: tell_partners,
}
