"""Invoices: creating, sending, changing, suspending their reminders, handing them to
collection, and reading them with the step that goes next."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from relance.common.db import Database
from relance.common.errors import Conflict, NotFound, Unprocessable
from relance.common.events.invoice_events import (
    InvoiceHandedToCollection,
    InvoiceSent,
    InvoiceStatusChanged,
    InvoiceUpdated,
    RemindersSuspended,
)
from relance.common.events.types import CustomerSnapshot
from relance.common.outbox import add_events, outbox_row
from relance.common.paging import encode_cursor
from relance.invoice_api import repository as repo
from relance.invoice_api.repository import AnyRow, InvoiceFilters
from relance.invoice_api.service.snapshots import customer_snapshot, invoice_snapshot
from relance.invoice_api.service.tenant import Tenant
from relance.invoice_api.status import (
    InvoiceStatus,
    StatusFacts,
    status_facts,
    tracking,
)
from relance.invoice_api.tables import invoices

# Reading


async def require_invoice(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, *, lock: bool = False
) -> AnyRow:
    row = await repo.get_invoice(session, tenant.id, invoice_id, tenant.today(), lock=lock)
    if row is None:
        raise NotFound("invoice")
    return row


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """An invoice as a user sees it: its row (with ``status`` and ``customer_name``) and the
    reminder step that goes next, if any."""

    invoice: AnyRow
    next_step: AnyRow | None


async def with_next_steps(
    session: AsyncSession, tenant: Tenant, rows: Sequence[AnyRow]
) -> list[InvoiceState]:
    steps = await repo.next_steps(session, tenant.id, [r.id for r in rows])
    return [InvoiceState(r, steps.get(r.id)) for r in rows]


async def invoice_state(session: AsyncSession, tenant: Tenant, row: AnyRow) -> InvoiceState:
    (state,) = await with_next_steps(session, tenant, [row])
    return state


async def get_invoice(session: AsyncSession, tenant: Tenant, invoice_id: UUID) -> InvoiceState:
    return await invoice_state(session, tenant, await require_invoice(session, tenant, invoice_id))


@dataclass(frozen=True, slots=True)
class InvoicePage:
    items: list[InvoiceState]
    next_cursor: str | None


async def list_invoices(
    session: AsyncSession, tenant: Tenant, filters: InvoiceFilters, limit: int, cursor: str | None
) -> InvoicePage:
    """The organization's invoices, newest first, ``limit`` at a time."""
    rows = list(
        await repo.list_invoices(session, tenant.id, tenant.today(), filters, limit, cursor)
    )
    page = rows[:limit]
    return InvoicePage(
        items=await with_next_steps(session, tenant, page),
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None,
    )


async def list_reminders(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID
) -> Sequence[AnyRow]:
    """The invoice's reminder steps, in plan order."""
    await require_invoice(session, tenant, invoice_id)
    return await repo.list_steps(session, tenant.id, invoice_id)


async def list_activity(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, limit: int
) -> Sequence[AnyRow]:
    """The invoice's activity feed, newest first."""
    await require_invoice(session, tenant, invoice_id)
    return await repo.list_activity(session, tenant.id, invoice_id, limit)


# What every change of an invoice's facts does


async def track_status(
    session: AsyncSession, tenant: Tenant, row: AnyRow, *, announce: bool = False
) -> None:
    """After a change of the invoice's facts (``row``: the invoice as it is now): store its
    status as told, and when the calendar next changes it. The change's own event tells the
    new status, unless ``announce``: then a status that differs from the one last told gets
    its ``invoice.status_changed`` (a due date moved into the past, say)."""
    after = tracking(status_facts(row), tenant.today(), tenant.org.timezone)
    await repo.update_invoice(session, tenant.id, row.id, after.values())
    before = row.status_announced
    if announce and before is not None and before != after.status_announced:
        changed = InvoiceStatusChanged(
            invoice_id=row.id,
            status=after.status_announced,
            previous_status=before,
            changed_at=tenant.now(),
        )
        await add_events(session, [tenant.event(changed)])


async def announce_updates(
    session: AsyncSession, tenant: Tenant, invoice_ids: Sequence[UUID]
) -> None:
    """Write ``invoice.updated`` for each invoice, as it is now."""
    rows = [await require_invoice(session, tenant, invoice_id) for invoice_id in invoice_ids]
    await _announce_updated(session, tenant, rows, None)


async def _announce_updated(
    session: AsyncSession, tenant: Tenant, rows: Sequence[AnyRow], previous_due: date | None
) -> None:
    events = []
    for row in rows:
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


# Creating (the hot path of POST /v1/invoices)


@dataclass(frozen=True, slots=True)
class NewInvoice:
    """An invoice to create: a draft, or, with ``sent_at``, one sent elsewhere and imported."""

    customer_id: UUID
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    invoice_text: str | None = None
    payment_reference: str | None = None
    external_id: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreatedInvoice:
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


async def create_invoice(database: Database, tenant: Tenant, data: NewInvoice) -> CreatedInvoice:
    """One statement on one pooled connection checks and writes the invoice, its activity
    and, for an invoice already sent, its ``invoice.sent`` event. The answer is made from
    what was written, as reading it back would give it."""
    async with database.driver_connection() as connection:
        now = tenant.now()
        if data.sent_at is not None and data.sent_at > now:
            await _refuse_if_refused(connection, tenant, data)  # those refusals come first
            raise Unprocessable("sent_at", "sent_at is in the future; send the invoice instead")
        sent_at = data.sent_at.astimezone(UTC) if data.sent_at is not None else None
        track = tracking(
            StatusFacts(sent_at, total=data.total, paid=Decimal(0), due_date=data.due_date),
            tenant.today(),
            tenant.org.timezone,
        )
        invoice = CreatedInvoice(
            id=uuid.uuid4(),
            number=data.number,
            customer_id=data.customer_id,
            customer_name="",  # the statement reads it
            status=InvoiceStatus(track.status_announced),
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
            **track.values(),
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
    connection: asyncpg.Connection, tenant: Tenant, data: NewInvoice
) -> None:
    _refuse(
        await repo.invoice_refusal(
            connection, tenant.id, data.customer_id, data.number, data.external_id
        ),
        data,
    )


def _refuse(field: str | None, data: NewInvoice) -> None:
    """Raise what the failed check of ``repository.create_invoice`` answers, if one failed."""
    if field == "customer_id":
        raise Unprocessable("customer_id", "no such customer in this organization")
    if field == "number":
        raise Conflict(f"invoice number {data.number!r} is already used")
    if field == "external_id":
        raise Conflict(f"an invoice with external_id {data.external_id!r} exists")


async def send_invoice(session: AsyncSession, tenant: Tenant, invoice_id: UUID) -> InvoiceState:
    """Send a draft now; the invoice as it is then."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.sent_at is not None:
        raise Conflict(f"invoice {row.number} was already sent on {row.sent_at.isoformat()}")
    now = tenant.now()
    await repo.update_invoice(session, tenant.id, invoice_id, {"sent_at": now, "updated_at": now})
    sent = await require_invoice(session, tenant, invoice_id)
    customer = await repo.get_customer(session, tenant.id, sent.customer_id)
    await repo.add_activity(
        session, tenant.id, invoice_id, now, "invoice.sent", {"sent_at": sent.sent_at.isoformat()}
    )
    await add_events(
        session,
        [
            tenant.event(
                InvoiceSent(
                    invoice_id=sent.id,
                    organization=tenant.snapshot,
                    customer=customer_snapshot(customer),
                    invoice=invoice_snapshot(sent),
                    imported=False,
                )
            )
        ],
    )
    await track_status(session, tenant, sent)
    return await invoice_state(session, tenant, sent)


async def update_invoice(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, changes: Mapping[str, Any]
) -> InvoiceState:
    """Change the fields in ``changes`` (those the client gave); the invoice as it is then."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    changes = {k: v for k, v in changes.items() if v != getattr(row, k)}
    if changes.get("due_date", "") is None:
        raise Unprocessable("due_date", "due_date cannot be removed")
    if "due_date" in changes and changes["due_date"] < row.issue_date:
        raise Unprocessable("due_date", "due_date is before issue_date")
    if changes.get("external_id") and await repo.external_id_taken(
        session, invoices, tenant.id, changes["external_id"], except_id=invoice_id
    ):
        raise Conflict(f"an invoice with external_id {changes['external_id']!r} exists")
    if not changes:
        return await invoice_state(session, tenant, row)
    await repo.update_invoice(
        session, tenant.id, invoice_id, {**changes, "updated_at": tenant.now()}
    )
    detail = {k: v.isoformat() if isinstance(v, date) else v for k, v in changes.items()}
    await repo.add_activity(session, tenant.id, invoice_id, tenant.now(), "invoice.updated", detail)
    after = await require_invoice(session, tenant, invoice_id)
    if row.sent_at is not None:
        previous = row.due_date if "due_date" in changes else None
        await _announce_updated(session, tenant, [after], previous)
        if previous is not None:
            await track_status(session, tenant, after, announce=True)
    return await invoice_state(session, tenant, after)


async def suspend_reminders(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID, reason: str | None
) -> InvoiceState:
    """Stop reminders for good (nothing happens when they already were); the invoice as it
    is then."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.reminders_suspended_at is not None:
        return await invoice_state(session, tenant, row)
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
    return await get_invoice(session, tenant, invoice_id)


async def hand_to_collection(
    session: AsyncSession, tenant: Tenant, invoice_id: UUID
) -> InvoiceState:
    """Hand the invoice to a collection agency (once); the invoice as it is then."""
    row = await require_invoice(session, tenant, invoice_id, lock=True)
    if row.in_collection_at is not None:
        return await invoice_state(session, tenant, row)
    if row.status in (InvoiceStatus.DRAFT, InvoiceStatus.PAID):
        raise Conflict(f"a {row.status} invoice cannot be handed to collection")
    now = tenant.now()
    await repo.update_invoice(
        session, tenant.id, invoice_id, {"in_collection_at": now, "updated_at": now}
    )
    await repo.add_activity(session, tenant.id, invoice_id, now, "invoice.handed_to_collection")
    after = await require_invoice(session, tenant, invoice_id)
    await track_status(session, tenant, after)
    await add_events(
        session, [tenant.event(InvoiceHandedToCollection(invoice_id=invoice_id, handed_at=now))]
    )
    return await invoice_state(session, tenant, after)
