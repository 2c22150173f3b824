"""The use cases on the notifier's copy of invoices: kept from invoice events, so that each
email quotes the invoice as it stands when sent, and each partner message names it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events import Event
from relance.common.events.invoice_events import InvoiceSent, InvoiceUpdated, PaymentReported
from relance.common.logging import get_logger
from relance.notifier import repository as repo
from relance.notifier.email import repository as email_repo
from relance.notifier.webhooks.service import fan_out

log = get_logger(__name__)


async def keep_invoice(
    session: AsyncSession, event: Event[InvoiceSent] | Event[InvoiceUpdated]
) -> None:
    """Keep the invoice as the event describes it (unless a newer event did), make the
    emails that waited for it due, and tell the partners."""
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
    if await email_repo.wake_emails_awaiting(
        session, event.organization_id, data.invoice_id, event.time
    ):
        log.info("invoice arrived, its waiting emails are due", invoice=str(data.invoice_id))
    await fan_out(session, event)


async def keep_payment(session: AsyncSession, event: Event[PaymentReported]) -> None:
    """The invoice's amounts after this payment (the next email quotes its balance), and
    the partners told."""
    await repo.set_amounts(
        session,
        event.organization_id,
        event.data.invoice_id,
        total=event.data.total,
        balance=event.data.balance,
        as_of=event.time,
    )
    await fan_out(session, event)
