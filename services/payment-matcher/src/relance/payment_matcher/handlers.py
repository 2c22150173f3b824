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
from relance.common.logging import get_logger
from relance.payment_matcher import repository as repo
from relance.payment_matcher import service
from relance.payment_matcher.matching import invoice_lookup_keys, normalize_iban

log = get_logger(__name__)


async def on_invoice_changed(
    session: AsyncSession, event: Event[InvoiceSent] | Event[InvoiceUpdated]
) -> None:
    data = event.data
    invoice, customer = data.invoice, data.customer
    if invoice.sent_at is None:  # a draft is nobody's debt yet
        return
    org_id = event.organization_id
    # taken before any row: an import running now ends first (its credits are then seen
    # below), and locks are always taken in the same order as an import takes them
    await repo.lock_organization(session, org_id)
    # invoice-api's balance may not include this service's latest matches yet: they are
    # taken off until it acknowledges them, so that no transfer pays what another one paid
    balance = await service.balance_from_invoice_api(
        session, org_id, data.invoice_id, invoice.balance
    )
    new = await repo.save_open_invoice(
        session,
        {
            "invoice_id": data.invoice_id,
            "organization_id": org_id,
            "customer_id": customer.id,
            "number": invoice.number,
            "payment_reference": invoice.payment_reference,
            "currency": invoice.currency,
            "balance": balance,
            "due_date": invoice.due_date,
            "sent_on": invoice.sent_at.date(),
        },
    )
    await repo.save_payer(
        session, org_id, customer.id, customer.name, [normalize_iban(i) for i in customer.ibans]
    )
    if new and balance > 0:
        # its payment may have come first: a credit that waits for it is matched now
        await service.match_waiting_credits(
            session,
            org_id,
            invoice_lookup_keys(invoice.number, invoice.payment_reference),
            event.time,
        )


async def on_payment_reported(session: AsyncSession, event: Event[PaymentReported]) -> None:
    data, org_id = event.data, event.organization_id
    await repo.lock_organization(session, org_id)  # no import lowers the balance meanwhile
    balance = await service.balance_from_invoice_api(
        session, org_id, data.invoice_id, data.balance, acknowledged=data
    )
    await repo.set_balance(session, org_id, data.invoice_id, balance)


HANDLERS: dict[str, Handler] = {
    **tenants.HANDLERS,
    InvoiceSent.event_type: on_invoice_changed,
    InvoiceUpdated.event_type: on_invoice_changed,
    PaymentReported.event_type: on_payment_reported,
}
