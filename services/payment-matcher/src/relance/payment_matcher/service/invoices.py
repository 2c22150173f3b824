"""This service's copy of invoice-api's open invoices and their customers, kept from its
events: each balance taken less this service's payments invoice-api has not acknowledged
yet, and the credits that waited for a new invoice matched at last."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.events.invoice_events import PaymentReported
from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot
from relance.payment_matcher import repository as repo
from relance.payment_matcher.matching import balance_here, invoice_lookup_keys, normalize_iban
from relance.payment_matcher.service.importing import match_waiting_credits


async def keep_invoice(
    session: AsyncSession,
    org_id: UUID,
    invoice_id: UUID,
    invoice: InvoiceSnapshot,
    customer: CustomerSnapshot,
    now: datetime,
) -> None:
    """An invoice as invoice-api sent or updated it, and its customer as a payer. A draft is
    nobody's debt yet: skipped."""
    if invoice.sent_at is None:
        return
    # taken before any row: an import running now ends first (its credits are then seen
    # below), and locks are always taken in the same order as an import takes them
    await repo.lock_organization(session, org_id)
    # invoice-api's balance may not include this service's latest matches yet: they are
    # taken off until it acknowledges them, so that no transfer pays what another one paid
    balance = await balance_from_invoice_api(session, org_id, invoice_id, invoice.balance)
    new = await repo.save_open_invoice(
        session,
        {
            "invoice_id": invoice_id,
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
        await match_waiting_credits(
            session,
            org_id,
            invoice_lookup_keys(invoice.number, invoice.payment_reference),
            now,
        )


async def take_reported_payment(
    session: AsyncSession, org_id: UUID, payment: PaymentReported
) -> None:
    """invoice-api's balance after a payment, and, when the payment is one of this
    service's, its acknowledgment."""
    await repo.lock_organization(session, org_id)  # no import lowers the balance meanwhile
    balance = await balance_from_invoice_api(
        session, org_id, payment.invoice_id, payment.balance, acknowledged=payment
    )
    await repo.set_balance(session, org_id, payment.invoice_id, balance)


async def balance_from_invoice_api(
    session: AsyncSession,
    org_id: UUID,
    invoice_id: UUID,
    reported: Decimal,
    *,
    acknowledged: PaymentReported | None = None,
) -> Decimal:
    """The invoice's balance to match against, from the one invoice-api reports in an event:
    less this service's payments it has not acknowledged yet. ``acknowledged``: the payment
    this event reports, which its balance includes; one of this service's when it names its
    match (``match_id``), or, from an invoice-api that does not name it yet, when it comes
    from the bank (``source``) with the transaction's reference."""
    if acknowledged is not None and (acknowledged.match_id or acknowledged.source == "bank"):
        await repo.acknowledge_payment(
            session,
            org_id,
            invoice_id,
            match_id=acknowledged.match_id,
            bank_reference=acknowledged.reference,
        )
    if reported <= 0:
        # paid in full over there: invoice-api refuses any further payment of it, so a
        # match it has not acknowledged (it refused it: paid meanwhile, another currency)
        # never will be, and must not lower a balance the invoice might have again later
        await repo.forget_payments_in_flight(session, org_id, invoice_id)
        return reported
    return balance_here(reported, await repo.payments_in_flight_of(session, org_id, invoice_id))
