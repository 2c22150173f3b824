"""Partners: the secret they sign their requests with, and the payments they report (the
signature is checked by the route, with the secret)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.errors import Unprocessable
from relance.common.signing import new_webhook_secret
from relance.invoice_api import repository as repo
from relance.invoice_api.service.payments import NewPayment, record_payment
from relance.invoice_api.service.tenant import Tenant


async def partner_secret(session: AsyncSession, tenant: Tenant) -> str | None:
    """The secret the organization's partner signs with, if it has one."""
    return await repo.partner_secret(session, tenant.id)


async def new_partner_secret(session: AsyncSession, tenant: Tenant) -> str:
    """Give the organization a new partner secret; the previous one stops working now."""
    secret = new_webhook_secret()
    await repo.set_partner_secret(session, tenant.id, secret)
    return secret


@dataclass(frozen=True, slots=True)
class PartnerPaymentRecorded:
    """A partner's ``payment.recorded``: the invoice named by our ``invoice_number`` or its
    ``external_id`` (both may be given if they name the same invoice), and the payment."""

    type: str
    invoice_number: str | None
    external_id: str | None
    payment: NewPayment


@dataclass(frozen=True, slots=True)
class PartnerEventApplied:
    invoice_id: UUID
    payment_id: UUID
    first_time: bool


async def apply_partner_event(
    session: AsyncSession, tenant: Tenant, webhook_id: str, event: PartnerPaymentRecorded
) -> PartnerEventApplied:
    """Record the payment a partner reports, once per ``webhook_id``: a replay answers what
    the first delivery did and changes nothing."""
    done = await repo.partner_event(session, tenant.id, webhook_id)
    if done is not None:
        return PartnerEventApplied(done.invoice_id, done.payment_id, first_time=False)
    invoice_id = await _partner_invoice(session, tenant, event)
    claimed = await repo.claim_partner_event(
        session,
        {
            "organization_id": tenant.id,
            "webhook_id": webhook_id,
            "type": event.type,
            "invoice_id": invoice_id,
            "payment_id": uuid.uuid4(),
            "received_at": tenant.now(),
        },
    )
    done = await repo.partner_event(session, tenant.id, webhook_id)
    assert done is not None  # claimed now, or by a request that committed first
    if not claimed:
        return PartnerEventApplied(done.invoice_id, done.payment_id, first_time=False)
    await record_payment(
        session, tenant, invoice_id, event.payment, source="partner", payment_id=done.payment_id
    )
    return PartnerEventApplied(invoice_id, done.payment_id, first_time=True)


async def _partner_invoice(
    session: AsyncSession, tenant: Tenant, data: PartnerPaymentRecorded
) -> UUID:
    found = await repo.invoice_ids_named(session, tenant.id, data.invoice_number, data.external_id)
    if data.invoice_number is not None and "number" not in found:
        raise Unprocessable(
            "data.invoice_number", f"no invoice numbered {data.invoice_number!r} here"
        )
    if data.external_id is not None and "external_id" not in found:
        raise Unprocessable(
            "data.external_id", f"no invoice with external_id {data.external_id!r} here"
        )
    if len(set(found.values())) > 1:
        raise Unprocessable("data", "invoice_number and external_id name two different invoices")
    return next(iter(found.values()))
