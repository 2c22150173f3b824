"""What users and partners do to invoices, as use cases: each changes the state and writes
the events it causes to the outbox, in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.calendar import BusinessCalendar
from relance.common.clock import Clock, local_today
from relance.common.db import Database
from relance.common.errors import Conflict, NotFound, Unprocessable
from relance.common.events import Event, Payload
from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceSent,
    InvoiceStatusChanged,
    InvoiceUpdated,
    PaymentReported,
    PaymentScheduled,
    RemindersSuspended,
)
from relance.common.events.organization_events import OrganizationSaved
from relance.common.events.types import CustomerSnapshot, InvoiceSnapshot, OrganizationSnapshot
from relance.common.money import amount_problem, quantize
from relance.common.outbox import add_events, outbox_row
from relance.common.signing import new_webhook_secret
from relance.common.tenancy import api_key_sha256, new_api_key
from relance.invoice_api import repository as repo
from relance.invoice_api.calendar_changes import status_facts, tracking
from relance.invoice_api.repository import AnyRow
from relance.invoice_api.schemas import (
    CustomerIn,
    CustomerPatch,
    InvoiceIn,
    InvoicePatch,
    OrganizationIn,
    PartnerEventIn,
    PartnerPayment,
    PaymentIn,
    PaymentScheduleIn,
)
from relance.invoice_api.status import (
    SCHEDULE_GRACE_BUSINESS_DAYS,
    InvoiceStatus,
    StatusFacts,
    invoice_status,
)
from relance.invoice_api.tables import customers, invoices

SOURCE = "invoice-api"


@dataclass(frozen=True)
class Tenant:
    """The organization a request acts for, with the clock to read its today."""

    org: AnyRow
    clock: Clock

    @property
    def id(self) -> UUID:
        org_id: UUID = self.org.id
        return org_id

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local_today(self.clock, self.org.timezone)

    def event(self, payload: Payload) -> Event[Payload]:
        return Event.new(payload, source=SOURCE, organization_id=self.id, time=self.now())

    @cached_property
    def snapshot(self) -> OrganizationSnapshot:
        """The organization as events carry it."""
        return organization_snapshot(self.org)


# Organizations


async def create_organization(
    session: AsyncSession, clock: Clock, data: OrganizationIn
) -> tuple[dict[str, Any], str]:
    api_key = new_api_key()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": data.name,
        "country": data.country,
        "timezone": data.timezone,
        "locale": data.locale,
        "reminder_time": data.reminder_time,
        "sender_email": data.sender_email,
        "api_key_sha256": api_key_sha256(api_key),
        "created_at": clock.now(),
    }
    await repo.insert_organization(session, values)
    snapshot = organization_snapshot(values)
    saved = OrganizationSaved(
        organization_id=values["id"], organization=snapshot, api_key_sha256=values["api_key_sha256"]
    )
    event = Event.new(saved, source=SOURCE, organization_id=values["id"], time=clock.now())
    await add_events(session, [event])
    return values, api_key


def organization_snapshot(org: Any) -> OrganizationSnapshot:
    def get(key: str) -> Any:
        return org[key] if isinstance(org, dict) else getattr(org, key)

    return OrganizationSnapshot(
        id=get("id"),
        name=get("name"),
        country=get("country"),
        timezone=get("timezone"),
        locale=get("locale"),
        reminder_time=get("reminder_time").strftime("%H:%M"),
        sender_email=get("sender_email"),
    )


# Customers


async def create_customer(session: AsyncSession, tenant: Tenant, data: CustomerIn) -> UUID:
    if data.external_id and await repo.external_id_taken(
        session, customers, tenant.id, data.external_id
    ):
        raise Conflict(f"a customer with external_id {data.external_id!r} exists")
    customer_id = uuid.uuid4()
    await repo.insert_customer(
        session,
        {
            "id": customer_id,
            "organization_id": tenant.id,
            "name": data.name,
            "email": str(data.email) if data.email else None,
            "locale": data.locale,
            "ibans": list(dict.fromkeys(data.ibans)),
            "external_id": data.external_id,
            "created_at": tenant.now(),
        },
    )
    return customer_id


async def update_customer(
    session: AsyncSession, tenant: Tenant, customer_id: UUID, data: CustomerPatch
) -> None:
    """Change a customer; its open sent invoices are re-announced so reminders use the change."""
    if await repo.get_customer(session, tenant.id, customer_id) is None:
        raise NotFound("customer")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise Unprocessable("name", "name cannot be removed")
    if changes.get("external_id") and await repo.external_id_taken(
        session, customers, tenant.id, changes["external_id"], except_id=customer_id
    ):
        raise Conflict(f"a customer with external_id {changes['external_id']!r} exists")
    if "email" in changes and changes["email"] is not None:
        changes["email"] = str(changes["email"])
    if "ibans" in changes:  # null removes them all
        changes["ibans"] = list(dict.fromkeys(changes["ibans"] or []))
    if not changes:
        return
    await repo.update_customer(session, tenant.id, customer_id, changes)
    open_ids = await repo.open_sent_invoice_ids(session, tenant.id, customer_id)
    await announce_updates(session, tenant, open_ids)


async def announce_updates(
    session: AsyncSession,
    tenant: Tenant,
    invoice_ids: Sequence[UUID],
    previous_due: date | None = None,
) -> None:
    events = []
    for invoice_id in invoice_ids:
        row = await require_invoice(session, tenant, invoice_id)
        customer = await repo.get_customer(session, tenant.id, row.customer_id)
        events.append(
            tenant.event(
                InvoiceUpdated(
                    invoice_id=row.id,
                    organization=tenant.snapshot,
                    customer=customer_snapshot(customer),
                    invoice=invoice_snapshot(row),
                    previous_due_date=previous_due,
                )
            )
        )
    await add_events(session, events)


def customer_snapshot(row: Any) -> CustomerSnapshot:
    return CustomerSnapshot(
        id=row.id,
        name=row.name,
        email=row.email,
        locale=row.locale,
        ibans=tuple(row.ibans or ()),
        external_id=row.external_id,
    )


# Invoices


def invoice_snapshot(row: Any) -> InvoiceSnapshot:
    return InvoiceSnapshot(
        number=row.number,
        currency=row.currency,
        total=quantize(row.total, row.currency),
        paid=quantize(row.paid, row.currency),
        balance=quantize(row.total - row.paid, row.currency),
        issue_date=row.issue_date,
        due_date=row.due_date,
        sent_at=row.sent_at,
        payment_reference=row.payment_reference,
        external_id=row.external_id,
        invoice_text=row.invoice_text,
    )


async def require_invoice(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, *, lock: bool = False
) -> AnyRow:
    row = await repo.get_invoice(session, tenant.id, invoice_id, tenant.today(), lock=lock)
    if row is None:
        raise NotFound("invoice")
    return row


async def track_status(
    session: AsyncSession,
    tenant: Tenant,
    invoice_id: UUID,
    row: AnyRow | None = None,
    *,
    announce: bool = False,
) -> None:
    """After a change of the invoice's facts (``row``: as it is now, if already read): store
    its status as told, and when the calendar next changes it. The change's own event tells
    the new status, unless ``announce``: then a status that differs from the one last told
    gets its ``invoice.status_changed`` (a due date moved into the past, say)."""
    row = row or await require_invoice(session, tenant, invoice_id)
    after = tracking(status_facts(row), tenant.today(), tenant.org.timezone)
    await repo.update_invoice(session, tenant.id, invoice_id, after.values())
    before = row.status_announced
    if announce and before is not None and before != after.status_announced:
        changed = InvoiceStatusChanged(
            invoice_id=invoice_id,
            status=after.status_announced,
            previous_status=before,
            changed_at=tenant.now(),
        )
        await add_events(session, [tenant.event(changed)])


@dataclass(frozen=True, slots=True)
class NewInvoice:
    """A created invoice, with the attributes ``repository.get_invoice`` would read back."""

    id: UUID
    number: str
    customer_id: UUID
    customer_name: str
    status: InvoiceStatus
    currency: str
    total: Decimal
    issue_date: date
    due_date: date
    sent_at: datetime | None
    imported: bool
    invoice_text: str | None
    payment_reference: str | None
    external_id: str | None
    created_at: datetime
    paid: Decimal = Decimal(0)
    payment_detected: bool = False
    reminders_suspended_at: datetime | None = None
    in_collection_at: datetime | None = None
    scheduled_payment_on: date | None = None
    scheduled_payment_amount: Decimal | None = None
    scheduled_until: date | None = None


INVOICE_UNIQUE_CONSTRAINTS = ("invoices_number_per_organization", "invoices_external_id")


async def create_invoice(database: Database, tenant: Tenant, data: InvoiceIn) -> NewInvoice:
    """One statement on one pooled connection checks and writes the invoice, its activity
    and, for an invoice already sent, its ``invoice.sent`` event. The answer is made from
    what was written, as reading it back would give it."""
    async with database.driver_connection() as connection:
        now = tenant.now()
        if data.sent_at is not None and data.sent_at > now:
            await _refuse_if_refused(connection, tenant, data)  # those refusals come first
            raise Unprocessable("sent_at", "sent_at is in the future; send the invoice instead")
        sent_at = data.sent_at.astimezone(UTC) if data.sent_at is not None else None
        invoice = NewInvoice(
            id=uuid.uuid4(),
            number=data.number,
            customer_id=data.customer_id,
            customer_name="",  # the statement reads it
            status=invoice_status(
                StatusFacts(sent_at, total=data.total, paid=Decimal(0), due_date=data.due_date),
                tenant.today(),
            ),
            currency=data.currency,
            total=data.total,
            issue_date=data.issue_date,
            due_date=data.due_date,
            sent_at=sent_at,
            imported=sent_at is not None,
            invoice_text=data.invoice_text,
            payment_reference=data.payment_reference,
            external_id=data.external_id,
            created_at=now,
        )
        imported = None
        if sent_at is not None:
            event = tenant.event(
                InvoiceSent(
                    invoice_id=invoice.id,
                    organization=tenant.snapshot,
                    customer=CustomerSnapshot(id=data.customer_id, name=""),  # the statement's
                    invoice=invoice_snapshot(invoice),
                    imported=True,
                )
            )
            imported = (tenant.now(), {"sent_at": sent_at.isoformat()}, outbox_row(event))
        values = {
            "id": invoice.id,
            "organization_id": tenant.id,
            "customer_id": data.customer_id,
            "number": data.number,
            "issue_date": data.issue_date,
            "due_date": data.due_date,
            "currency": data.currency,
            "total": data.total,
            "invoice_text": data.invoice_text,
            "payment_reference": data.payment_reference,
            "external_id": data.external_id,
            "sent_at": sent_at,
            "imported": invoice.imported,
            "created_at": now,
            **tracking(status_facts(invoice), tenant.today(), tenant.org.timezone).values(),
        }
        try:
            created = await repo.create_invoice(connection, values, imported)
        except asyncpg.UniqueViolationError as exc:
            # a request with the same number or external id got in after the statement's checks
            if exc.constraint_name not in INVOICE_UNIQUE_CONSTRAINTS:
                raise
            await _refuse_if_refused(connection, tenant, data)
            raise
        _refuse(created["refused"], data)
    return replace(invoice, customer_name=created["customer_name"])


async def _refuse_if_refused(
    connection: asyncpg.Connection, tenant: Tenant, data: InvoiceIn
) -> None:
    _refuse(
        await repo.invoice_refusal(
            connection, tenant.id, data.customer_id, data.number, data.external_id
        ),
        data,
    )


def _refuse(field: str | None, data: InvoiceIn) -> None:
    """Raise what the failed check of ``repository.create_invoice`` answers, if one failed."""
    if field == "customer_id":
        raise Unprocessable("customer_id", "no such customer in this organization")
    if field == "number":
        raise Conflict(f"invoice number {data.number!r} is already used")
    if field == "external_id":
        raise Conflict(f"an invoice with external_id {data.external_id!r} exists")


async def send_invoice(session: AsyncSession, tenant: Tenant, invoice_id: UUID) -> None:
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.sent_at is not None:
        raise Conflict(f"invoice {row.number} was already sent on {row.sent_at.isoformat()}")
    now = tenant.now()
    await repo.update_invoice(session, tenant.id, invoice_id, {"sent_at": now, "updated_at": now})
    await _announce_sent(session, tenant, invoice_id, imported=False)
    await track_status(session, tenant, invoice_id)


async def _announce_sent(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, *, imported: bool
) -> None:
    row = await require_invoice(session, tenant, invoice_id)
    customer = await repo.get_customer(session, tenant.id, row.customer_id)
    await repo.add_activity(
        session,
        tenant.id,
        invoice_id,
        tenant.now(),
        "invoice.imported" if imported else "invoice.sent",
        {"sent_at": row.sent_at.isoformat()},
    )
    await add_events(
        session,
        [
            tenant.event(
                InvoiceSent(
                    invoice_id=row.id,
                    organization=tenant.snapshot,
                    customer=customer_snapshot(customer),
                    invoice=invoice_snapshot(row),
                    imported=imported,
                )
            )
        ],
    )


async def update_invoice(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, data: InvoicePatch
) -> None:
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v != getattr(row, k)}
    if changes.get("due_date", "") is None:
        raise Unprocessable("due_date", "due_date cannot be removed")
    if "due_date" in changes and changes["due_date"] < row.issue_date:
        raise Unprocessable("due_date", "due_date is before issue_date")
    if changes.get("external_id") and await repo.external_id_taken(
        session, invoices, tenant.id, changes["external_id"], except_id=invoice_id
    ):
        raise Conflict(f"an invoice with external_id {changes['external_id']!r} exists")
    if not changes:
        return
    await repo.update_invoice(
        session, tenant.id, invoice_id, {**changes, "updated_at": tenant.now()}
    )
    detail = {k: v.isoformat() if isinstance(v, date) else v for k, v in changes.items()}
    await repo.add_activity(session, tenant.id, invoice_id, tenant.now(), "invoice.updated", detail)
    if row.sent_at is not None:
        previous = row.due_date if "due_date" in changes else None
        await announce_updates(session, tenant, [invoice_id], previous_due=previous)
        if previous is not None:
            await track_status(session, tenant, invoice_id, announce=True)


# Payments


async def record_payment(
    session: AsyncSession,
    tenant: Tenant,
    invoice_id: UUID,
    data: PaymentIn,
    *,
    source: str = "user",
    match_id: UUID | None = None,
    payment_id: UUID | None = None,
) -> UUID:
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
    await track_status(session, tenant, invoice_id, after)
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
    return payment_id


async def schedule_payment(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, data: PaymentScheduleIn
) -> date:
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
    await track_status(session, tenant, invoice_id)
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
    return until


async def suspend_reminders(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, reason: str | None
) -> bool:
    """Stop reminders for good. Returns False when they already were (nothing happens)."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.reminders_suspended_at is not None:
        return False
    now = tenant.now()
    await repo.update_invoice(
        session,
        tenant.id,
        invoice_id,
        {"reminders_suspended_at": now, "suspension_reason": reason, "updated_at": now},
    )
    await repo.add_activity(
        session, tenant.id, invoice_id, now, "reminders.suspended", {"reason": reason}
    )
    await add_events(
        session,
        [tenant.event(RemindersSuspended(invoice_id=invoice_id, reason=reason, suspended_at=now))],
    )
    return True


async def hand_to_collection(session: AsyncSession, tenant: Tenant, invoice_id: UUID) -> bool:
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.in_collection_at is not None:
        return False
    if row.status in (InvoiceStatus.DRAFT, InvoiceStatus.PAID):
        raise Conflict(f"a {row.status} invoice cannot be handed to collection")
    now = tenant.now()
    await repo.update_invoice(
        session, tenant.id, invoice_id, {"in_collection_at": now, "updated_at": now}
    )
    await repo.add_activity(session, tenant.id, invoice_id, now, "invoice.handed_to_collection")
    await track_status(session, tenant, invoice_id)
    await add_events(
        session, [tenant.event(InvoiceHandedToCollection(invoice_id=invoice_id, handed_at=now))]
    )
    return True


# Partners: their signed requests (the signature is checked by the route, with the secret)


async def new_partner_secret(session: AsyncSession, tenant: Tenant) -> str:
    """Give the organization a new partner secret; the previous one stops working now."""
    secret = new_webhook_secret()
    await repo.set_partner_secret(session, tenant.id, secret)
    return secret


@dataclass(frozen=True, slots=True)
class PartnerEventApplied:
    invoice_id: UUID
    payment_id: UUID
    first_time: bool


async def apply_partner_event(
    session: AsyncSession, tenant: Tenant, webhook_id: str, event: PartnerEventIn
) -> PartnerEventApplied:
    """Record the payment a partner reports, once per ``webhook_id``: a replay answers what
    the first delivery did and changes nothing."""
    done = await repo.partner_event(session, tenant.id, webhook_id)
    if done is not None:
        return PartnerEventApplied(done.invoice_id, done.payment_id, first_time=False)
    data = event.data
    invoice_id = await _partner_invoice(session, tenant, data)
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
    # already validated, as PartnerPayment: PaymentIn would refuse a parsed Decimal
    payment = PaymentIn.model_construct(
        amount=data.amount, paid_on=data.paid_on, reference=data.reference
    )
    await record_payment(
        session, tenant, invoice_id, payment, source="partner", payment_id=done.payment_id
    )
    return PartnerEventApplied(invoice_id, done.payment_id, first_time=True)


async def _partner_invoice(session: AsyncSession, tenant: Tenant, data: PartnerPayment) -> UUID:
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
