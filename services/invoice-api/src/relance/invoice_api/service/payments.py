"""Payments: recording one (from a user, a partner or the bank) and a payment the customer
announced for a date."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.calendar import BusinessCalendar
from relance.common.errors import Conflict, Unprocessable
from relance.common.events.invoice_events import PaymentReported, PaymentScheduled
from relance.common.events.payment_events import PaymentMatched, PaymentSuggested
from relance.common.logging import get_logger
from relance.common.money import amount_problem, quantize
from relance.common.outbox import add_events
from relance.invoice_api import repository as repo
from relance.invoice_api.repository import AnyRow
from relance.invoice_api.service.invoices import (
    InvoiceState,
    invoice_state,
    require_invoice,
    track_status,
)
from relance.invoice_api.service.snapshots import invoice_snapshot
from relance.invoice_api.service.tenant import Tenant
from relance.invoice_api.status import SCHEDULE_GRACE_BUSINESS_DAYS, InvoiceStatus

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewPayment:
    amount: Decimal
    paid_on: date
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedPayment:
    """A payment recorded, and the invoice it paid as it is then."""

    id: UUID
    amount: Decimal
    invoice: AnyRow


@dataclass(frozen=True, slots=True)
class UserPayment:
    """A payment a user reported, and the invoice as the user sees it then."""

    id: UUID
    amount: Decimal
    invoice: InvoiceState


async def report_payment(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, data: NewPayment
) -> UserPayment:
    """A user reports a payment (``record_payment``)."""
    recorded = await record_payment(session, tenant, invoice_id, data)
    return UserPayment(
        recorded.id, recorded.amount, await invoice_state(session, tenant, recorded.invoice)
    )


async def record_payment(
    session: AsyncSession,
    tenant: Tenant,
    invoice_id: UUID,
    data: NewPayment,
    *,
    source: str = "user",
    match_id: UUID | None = None,
    payment_id: UUID | None = None,
) -> RecordedPayment:
    """Record a payment. More than the balance is refused: an overpayment is a mistake to
    correct, or, from a bank transfer, the payment-matcher keeps the excess as credit."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.sent_at is None:
        raise Conflict("a draft invoice cannot be paid: send or import it first")
    balance = row.total - row.paid
    if balance <= 0:
        raise Conflict(f"invoice {row.number} is already paid")
    problem = amount_problem(data.amount, row.currency)
    if problem:
        raise Unprocessable("amount", f"amount {problem}")
    if data.amount > balance:
        raise Unprocessable(
            "amount",
            f"amount {data.amount} exceeds the balance {quantize(balance, row.currency)} "
            f"{row.currency}",
        )
    payment_id = payment_id or uuid.uuid4()
    now = tenant.now()
    await repo.insert_payment(
        session,
        {
            "id": payment_id,
            "organization_id": tenant.id,
            "invoice_id": invoice_id,
            "amount": data.amount,
            "paid_on": data.paid_on,
            "reference": data.reference,
            "source": source,
            "match_id": match_id,
            "created_at": now,
        },
    )
    await repo.add_to_paid(session, tenant.id, invoice_id, data.amount, now)
    after = await require_invoice(session, tenant, invoice_id)
    await track_status(session, tenant, after)
    snapshot = invoice_snapshot(after)
    await repo.add_activity(
        session,
        tenant.id,
        invoice_id,
        now,
        "payment.reported",
        {
            "amount": format(snapshot.paid - quantize(row.paid, row.currency), "f"),
            "paid_on": data.paid_on.isoformat(),
            "source": source,
            "balance": format(snapshot.balance, "f"),
        },
    )
    await add_events(
        session,
        [
            tenant.event(
                PaymentReported(
                    invoice_id=invoice_id,
                    payment_id=payment_id,
                    amount=quantize(data.amount, row.currency),
                    currency=row.currency,
                    paid_on=data.paid_on,
                    reference=data.reference,
                    source=source,
                    total=snapshot.total,
                    paid=snapshot.paid,
                    balance=snapshot.balance,
                    status=after.status,
                    match_id=match_id,
                )
            )
        ],
    )
    return RecordedPayment(payment_id, quantize(data.amount, row.currency), after)


@dataclass(frozen=True, slots=True)
class AnnouncedPayment:
    """A payment the customer announced for ``planned_on``, of ``amount`` if given."""

    planned_on: date
    amount: Decimal | None = None


async def schedule_payment(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, data: AnnouncedPayment
) -> InvoiceState:
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.status in (InvoiceStatus.DRAFT, InvoiceStatus.PAID):
        raise Conflict(f"a {row.status} invoice cannot have a payment scheduled")
    if data.planned_on < tenant.today():
        raise Unprocessable("planned_on", "planned_on is in the past")
    if data.amount is not None:
        problem = amount_problem(data.amount, row.currency)
        if problem or data.amount > row.total - row.paid:
            raise Unprocessable("amount", f"amount {problem or 'exceeds the balance'}")
    until = BusinessCalendar(tenant.org.country).add_business_days(
        data.planned_on, SCHEDULE_GRACE_BUSINESS_DAYS
    )
    now = tenant.now()
    await repo.update_invoice(
        session,
        tenant.id,
        invoice_id,
        {
            "scheduled_payment_on": data.planned_on,
            "scheduled_payment_amount": data.amount,
            "scheduled_until": until,
            "updated_at": now,
        },
    )
    detail: dict[str, Any] = {"planned_on": data.planned_on.isoformat(), "until": until.isoformat()}
    if data.amount is not None:
        detail["amount"] = format(data.amount, "f")
    await repo.add_activity(session, tenant.id, invoice_id, now, "payment.scheduled", detail)
    after = await require_invoice(session, tenant, invoice_id)
    await track_status(session, tenant, after)
    await add_events(
        session,
        [
            tenant.event(
                PaymentScheduled(
                    invoice_id=invoice_id, planned_on=data.planned_on, amount=data.amount
                )
            )
        ],
    )
    return await invoice_state(session, tenant, after)


# The payment-matcher's word on bank payments


async def record_bank_payment(session: AsyncSession, tenant: Tenant, data: PaymentMatched) -> None:
    """A bank credit pays the invoice: record it once per match, never above the balance."""
    if await repo.match_already_applied(session, data.match_id):
        return
    row = await require_invoice(session, tenant, data.invoice_id, lock=True)
    balance = Decimal(row.total - row.paid)
    if row.sent_at is None or balance <= 0 or data.currency != row.currency:
        log.warning(
            "bank payment not applicable, left to the matcher's credit",
            reason="not sent" if row.sent_at is None else "paid" if balance <= 0 else "currency",
        )
        return
    amount = min(data.amount, balance)
    await record_payment(
        session,
        tenant,
        data.invoice_id,
        NewPayment(amount=amount, paid_on=data.booked_on, reference=data.bank_reference),
        source="bank",
        match_id=data.match_id,
    )
    if row.payment_detected:
        await repo.update_invoice(session, tenant.id, data.invoice_id, {"payment_detected": False})


async def note_detected_payment(
    session: AsyncSession, tenant: Tenant, data: PaymentSuggested, at: datetime
) -> None:
    """A bank payment looks like the invoice's and waits for a person's decision."""
    await repo.update_invoice(session, tenant.id, data.invoice_id, {"payment_detected": True})
    await repo.add_activity(
        session,
        tenant.id,
        data.invoice_id,
        at,
        "payment.detected",
        {
            "match_id": str(data.match_id),
            "amount": format(data.amount, "f"),
            "bank_reference": data.bank_reference,
            "confidence": data.confidence,
        },
    )


async def close_suggestion(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, match_id: UUID, at: datetime, kind: str
) -> None:
    """A person confirmed or rejected a detected payment (``kind``: the activity's)."""
    await repo.update_invoice(session, tenant.id, invoice_id, {"payment_detected": False})
    await repo.add_activity(session, tenant.id, invoice_id, at, kind, {"match_id": str(match_id)})
