"""What the payment-matcher reads: its copy of the organizations (for API keys), and of the
open invoices and their customers, which the matching rules look through.

``invoice.sent`` and ``invoice.updated`` carry the whole invoice and customer: the copy is
replaced by what they say. ``payment.reported`` carries the balance after the payment, as
invoice-api keeps it, whoever reported it (a person, a partner, or this service's match,
then named by its ``match_id``). Every balance invoice-api reports is taken less this
service's payments it has not acknowledged yet (``payments_in_flight``).
Delivery is at least once; the consumer's inbox makes each event apply once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common import tenants
from relance.common.events import Event
from relance.common.events.invoice_events import InvoiceSent, InvoiceUpdated, PaymentReported
from relance.common.kafka import Handler
from relance.payment_matcher import service


async def on_invoice_changed(
    session: AsyncSession, event: Event[InvoiceSent] | Event[InvoiceUpdated]
) -> None:
    data = event.data
    await service.keep_invoice(
        session, event.organization_id, data.invoice_id, data.invoice, data.customer, event.time
    )


async def on_payment_reported(session: AsyncSession, event: Event[PaymentReported]) -> None:
    await service.take_reported_payment(session, event.organization_id, event.data)


HANDLERS: dict[str, Handler] = {
    **tenants.HANDLERS,
    InvoiceSent.event_type: on_invoice_changed,
    InvoiceUpdated.event_type: on_invoice_changed,
    PaymentReported.event_type: on_payment_reported,
}
